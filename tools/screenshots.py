"""Phone-size (390x844) screenshots of every console screen, for docs/screenshots/.

Runs `emergency serve --demo` on a free port with a throwaway database, drives headless Chromium
(Debian's /usr/bin/chromium, or $CHROMIUM) through a lockdown drill and a real lockdown, and saves
one PNG per screen. Usage:  .venv/bin/python tools/screenshots.py [output-dir]
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHONE = {"width": 390, "height": 844}
sys.path.insert(0, str(REPO))

from tests.console.served import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DISTRICT_ADMIN,
    PARTNER,
    PASSWORD,
    PRINCIPAL,
    TEACHER,
    browser_missing,
    serve_demo,
)


def main(out: Path) -> None:
    reason = browser_missing()
    if reason:
        raise SystemExit(f"cannot take screenshots: {reason}")
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with serve_demo() as served, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        def phone(email: str | None):
            context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True,
                                          base_url=served.base, service_workers="block")
            page = context.new_page()
            page.goto("/")
            if email:
                page.fill("#email", email)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector("[data-testid=active-runs]")
            return page

        def shot(page, name: str) -> None:
            page.wait_for_timeout(400)
            page.screenshot(path=str(out / f"{name}.png"))
            print(f"saved {out / name}.png")

        login = phone(None)
        login.wait_for_selector("#email")
        login.fill("#email", PRINCIPAL)
        shot(login, "login")

        principal = phone(PRINCIPAL)
        principal.click("[data-testid=start-PCMS]")
        principal.wait_for_selector("[data-testid=playbook-lockdown]")
        shot(principal, "start")

        teacher = phone(TEACHER)
        teacher.click("[data-testid=start-PCMS]")
        teacher.click("[data-testid=playbook-lockdown]")
        teacher.wait_for_selector("[data-testid=confirm-panel]")
        shot(teacher, "start-real-hold")

        school = next(s for s in served.get(PRINCIPAL, "/schools") if s["code"] == "PCMS")
        run = served.post(PRINCIPAL, "/runs", {"school_id": school["id"], "playbook": "lockdown", "mode": "drill"},
                          **{"Idempotency-Key": str(uuid.uuid4())})
        rooms = [r for r in served.get(PRINCIPAL, f"/schools/{school['id']}/rooms") if r["kind"] == "classroom"]
        reports = [
            {"status": "all_accounted", "present": 24},
            {"status": "all_accounted", "present": 22, "absent": 2},
            {"status": "students_missing", "present": 20, "missing": 1, "missing_students": ["J. Doe"]},
            {"status": "all_accounted", "present": 25, "extra": 2},
            {"status": "need_help", "present": 19, "injured": 1, "injured_students": ["K. Lee"]},
            {"status": "all_accounted", "present": 0, "room_empty": True},
            {"status": "all_accounted", "present": 21, "injured": 1},
        ]
        for room, report in zip(rooms[1:], reports, strict=False):
            served.post(PRINCIPAL, f"/runs/{run['id']}/checkins", {"room_id": room["id"], **report},
                        **{"Idempotency-Key": str(uuid.uuid4())})
        served.post(PRINCIPAL, f"/runs/{run['id']}/updates", {"message": "Drill in progress. Stay in your rooms."})

        principal.goto("/#/")
        principal.wait_for_selector("[data-testid=active-run]")
        shot(principal, "home")
        principal.goto(f"/#/run/{run['id']}/board")
        principal.wait_for_selector("[data-testid=room-tile]")
        shot(principal, "board")
        principal.evaluate("scrollTo(0, document.querySelector('[data-testid=unreported-rooms]').offsetTop - 40)")
        shot(principal, "board-tiles")
        principal.evaluate("window.scrollTo(0, 0)")
        principal.locator("[data-testid=problem-rooms] [data-testid=room-tile]").first.click()
        principal.wait_for_selector("[data-testid=room-panel][open]")
        shot(principal, "board-room")
        principal.locator("[data-testid=room-panel]").get_by_role("button", name="Close").click()
        principal.click("[data-testid=all-clear]")
        principal.wait_for_selector("[data-testid=open-items]")
        shot(principal, "board-all-clear")
        principal.keyboard.press("Escape")

        teacher.goto(f"/#/run/{run['id']}/checkin")
        teacher.wait_for_selector("[data-testid=send-checkin]")
        teacher.wait_for_selector("[data-testid=checklist]")
        teacher.evaluate("document.querySelector('[data-testid=room]').scrollIntoView({block: 'start'})")
        shot(teacher, "checkin-prefilled")
        teacher.locator("[data-testid=count-present]").fill("22")
        teacher.click("[data-testid=plus-missing]")
        teacher.locator("[data-testid=missing-name]").fill("A. Student")
        teacher.evaluate("document.querySelector('[data-testid=count-present]').scrollIntoView({block: 'start'})")
        shot(teacher, "checkin")
        teacher.evaluate("document.querySelector('[data-testid=checklist]').scrollIntoView({block: 'center'})")
        shot(teacher, "checkin-checklist")
        teacher.context.set_offline(True)
        teacher.click("[data-testid=send-checkin]")
        teacher.wait_for_selector("[data-testid=queued]")
        teacher.evaluate("document.querySelector('[data-testid=checkin-history]').scrollIntoView({block: 'center'})")
        shot(teacher, "checkin-queued-offline")
        teacher.context.set_offline(False)
        teacher.wait_for_selector("[data-testid=sent]")
        served.post(PRINCIPAL, f"/runs/{run['id']}/all-clear", {"message": "Drill over. Thank you."})

        high = next(s for s in served.get(DISTRICT_ADMIN, "/schools") if s["code"] == "PCHS")
        real = served.post(DISTRICT_ADMIN, "/runs", {"school_id": high["id"], "playbook": "lockdown", "mode": "real",
                                                     "confirm": True, "location": "East stairwell, 2nd floor"},
                           **{"Idempotency-Key": str(uuid.uuid4())})
        served.post(DISTRICT_ADMIN, f"/runs/{real['id']}/updates", {"message": "Police on site, north entrance."})
        partner = phone(PARTNER)
        partner.wait_for_selector("[data-testid=active-run]")
        shot(partner, "partner-home")
        partner.goto(f"/#/run/{real['id']}/view")
        partner.wait_for_selector("[data-testid=timeline] li")
        shot(partner, "partner-view")
        served.post(DISTRICT_ADMIN, f"/runs/{real['id']}/all-clear", {"message": "Building cleared by police."})
        partner.wait_for_selector("[data-testid=run-ended]")
        shot(partner, "partner-view-ended")

        principal.goto("/#/compliance")
        principal.wait_for_selector("[data-testid=compliance] .notice, [data-testid=compliance] .muted")
        shot(principal, "compliance")
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
