"""The console in headless Chromium against a served demo instance (`emergency serve --demo`).

Two phones at once: the principal's and a teacher's, each a separate browser context with its own
storage, talking to the same server over HTTP and Socket.IO, exactly as two people would.
"""

from __future__ import annotations

import uuid

import pytest

from tests.console.served import PARTNER, PRINCIPAL, TEACHER, browser_missing

pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser_missing() is not None,
                                                      reason=f"browser tests need {browser_missing()}")]


def school_id(served, code: str = "PCMS") -> int:
    return next(s["id"] for s in served.get(PRINCIPAL, "/schools") if s["code"] == code)


def home_room(served) -> dict:
    me = served.get(TEACHER, "/me")
    rooms = served.get(TEACHER, f"/schools/{school_id(served)}/rooms")
    return next(r for r in rooms if r["id"] == me["home_room_id"])


def start_drill(served, playbook: str = "lockdown") -> dict:
    return served.post(PRINCIPAL, "/runs", {"school_id": school_id(served), "playbook": playbook, "mode": "drill"},
                       **{"Idempotency-Key": str(uuid.uuid4())})


def end_if_active(served, run_id: int) -> None:
    if served.get(PRINCIPAL, f"/runs/{run_id}")["state"] == "active":
        served.post(PRINCIPAL, f"/runs/{run_id}/all-clear", {"message": "test over"})


def test_principal_starts_a_lockdown_drill_teacher_checks_in_and_the_board_turns_green(served, phone):
    from playwright.sync_api import expect

    principal = phone(PRINCIPAL)
    principal.click("[data-testid=start-PCMS]")
    expect(principal.locator("#mode-banner")).to_have_text("DRILL — THIS IS A DRILL")
    expect(principal.locator("[data-testid=mode-drill]")).to_have_attribute("aria-checked", "true")
    principal.click("[data-testid=playbook-lockdown]")
    principal.click("[data-testid=confirm-start]")
    principal.wait_for_url("**/#/run/*/board")
    run_id = int(principal.url.split("/run/")[1].split("/")[0])
    try:
        room = home_room(served)
        tile = principal.locator(f"[data-testid=room-tile][data-room-id='{room['id']}']")
        expect(tile).to_have_attribute("data-status", "unreported")
        expect(principal.locator("#mode-banner")).to_have_text("DRILL — THIS IS A DRILL")
        principal.evaluate("window.__noReload = true")

        teacher = phone(TEACHER)
        card = teacher.locator(f"[data-testid=active-run][data-run-id='{run_id}']")
        expect(card).to_contain_text("DRILL")
        card.get_by_role("link", name="Check in my room").click()
        expect(teacher.locator("#mode-banner")).to_have_text("DRILL — THIS IS A DRILL")
        expect(teacher.locator("[data-testid=room]")).to_have_value(str(room["id"]))
        teacher.click("[data-testid=acknowledge]")
        expect(teacher.locator("[data-testid=acknowledge]")).to_have_text("Alert acknowledged ✓")
        for _ in range(3):
            teacher.click("[data-testid=plus-present]")
        expect(teacher.locator("[data-testid=count-present]")).to_have_text("3")
        teacher.click("[data-testid=send-checkin]")
        expect(teacher.locator("[data-testid=sent]").first).to_contain_text("Check-in")

        # The principal's board changes live, without a reload.
        expect(tile).to_have_attribute("data-status", "all_accounted")
        expect(tile).to_have_class("tile tile-green")
        expect(principal.locator("[data-testid=total-present]")).to_have_text("3")
        expect(principal.locator("[data-testid=acks]")).to_contain_text("1/")
        expect(principal.locator("[data-testid=timeline]")).to_contain_text("All accounted")
        assert principal.evaluate("window.__noReload") is True

        principal.click("[data-testid=all-clear]")
        principal.click("[data-testid=all-clear]")
        expect(principal.locator("[data-testid=run-ended]")).to_contain_text("ALL CLEAR")
        expect(teacher.locator("[data-testid=run-ended]")).to_contain_text("ALL CLEAR")
        assert served.get(PRINCIPAL, f"/runs/{run_id}")["end_reason"] == "all_clear"
        checkins = served.get(PRINCIPAL, f"/runs/{run_id}/checkins")["checkins"]
        assert [(c["room_id"], c["status"], c["present"]) for c in checkins] == [(room["id"], "all_accounted", 3)]
        assert not principal.js_errors and not teacher.js_errors
    finally:
        end_if_active(served, run_id)


def test_an_offline_check_in_is_queued_then_sent_exactly_once(served, phone):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        teacher = phone(TEACHER)
        teacher.goto(f"/#/run/{run['id']}/checkin")
        expect(teacher.locator("[data-testid=send-checkin]")).to_be_visible()
        teacher.context.set_offline(True)
        expect(teacher.locator("#net")).to_have_text("Offline")
        teacher.click("[data-testid=plus-present]")
        teacher.click("[data-testid=plus-present]")
        teacher.click("[data-testid=plus-missing]")
        teacher.locator("[data-testid=missing-name]").fill("Student A")
        teacher.click("[data-testid=send-checkin]")
        queued = teacher.locator("[data-testid=queued]")
        expect(queued).to_contain_text("Queued on this phone")
        expect(teacher.locator("#outbox")).to_contain_text("1 report queued")
        expect(teacher.locator("[data-testid=sent]")).to_have_count(0)
        teacher.wait_for_timeout(6000)  # the outbox retries every 5 s; offline, nothing may get through
        assert served.get(PRINCIPAL, f"/runs/{run['id']}/checkins")["checkins"] == []

        teacher.context.set_offline(False)
        expect(teacher.locator("[data-testid=sent]").first).to_contain_text("Students missing")
        expect(queued).to_have_count(0)
        expect(teacher.locator("#outbox")).to_be_hidden()
        teacher.reload()  # a reload must not send it again
        expect(teacher.locator("[data-testid=sent]").first).to_be_visible()
        teacher.wait_for_timeout(1000)
        checkins = served.get(PRINCIPAL, f"/runs/{run['id']}/checkins")["checkins"]
        assert [(c["status"], c["present"], c["missing"], c["missing_students"]) for c in checkins] == [
            ("students_missing", 2, 1, ["Student A"])]
    finally:
        end_if_active(served, run["id"])


def test_a_real_start_needs_press_and_hold_and_looks_real_to_partners(served, phone):
    from playwright.sync_api import expect

    teacher = phone(TEACHER)
    teacher.click("[data-testid=start-PCMS]")
    expect(teacher.locator("[data-testid=mode-real]")).to_have_attribute("aria-checked", "true")
    expect(teacher.locator("#mode-banner")).to_have_text("REAL EMERGENCY")
    teacher.click("[data-testid=playbook-lockdown]")
    hold = teacher.locator("[data-testid=confirm-start]")
    expect(hold).to_contain_text("Hold to start REAL LOCKDOWN")
    hold.click()  # a tap is not enough
    teacher.wait_for_timeout(2500)
    assert served.get(PRINCIPAL, "/runs", state="active")["runs"] == []

    box = hold.bounding_box()
    teacher.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    teacher.mouse.down()
    teacher.wait_for_timeout(2300)
    teacher.mouse.up()
    teacher.wait_for_url("**/#/run/*/checkin")
    run_id = int(teacher.url.split("/run/")[1].split("/")[0])
    try:
        expect(teacher.locator("#mode-banner")).to_have_text("REAL EMERGENCY")
        run = served.get(PRINCIPAL, f"/runs/{run_id}")
        assert (run["mode"], run["playbook"]["key"], run["state"]) == ("real", "lockdown", "active")

        partner = phone(PARTNER)
        card = partner.locator(f"[data-testid=active-run][data-run-id='{run_id}']")
        expect(card).to_contain_text("REAL EMERGENCY")
        card.get_by_role("link", name="Open live view").click()
        expect(partner.locator("#mode-banner")).to_have_text("REAL EMERGENCY")
        expect(partner.locator("[data-testid=run-header]")).to_contain_text("Lockdown")
        expect(partner.locator("[data-testid=send-update]")).to_have_count(0)
        served.post(PRINCIPAL, f"/runs/{run_id}/updates", {"message": "Police on site, north entrance."})
        expect(partner.locator("[data-testid=timeline]")).to_contain_text("Police on site, north entrance.")
    finally:
        if served.get(PRINCIPAL, f"/runs/{run_id}")["state"] == "active":
            served.post(PRINCIPAL, f"/runs/{run_id}/cancel", {"reason": "browser test"})


def test_the_board_resynchronises_after_losing_its_connection(served, phone):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        principal = phone(PRINCIPAL)
        principal.goto(f"/#/run/{run['id']}/board")
        room = home_room(served)
        tile = principal.locator(f"[data-testid=room-tile][data-room-id='{room['id']}']")
        expect(tile).to_have_attribute("data-status", "unreported")
        expect(principal.locator("#net")).to_have_attribute("data-live", "true")
        principal.evaluate("window.__noReload = true")
        fills = []
        principal.on("request", lambda r: fills.append(r.url) if "/timeline?after_seq=" in r.url else None)

        principal.context.set_offline(True)
        expect(principal.locator("#net")).to_have_attribute("data-live", "false")
        # Missed while the principal's phone had no connection: no live event can reach it.
        served.post(TEACHER, f"/runs/{run['id']}/checkins", {"status": "need_help", "present": 12, "injured": 1},
                    **{"Idempotency-Key": str(uuid.uuid4())})
        principal.wait_for_timeout(1000)
        expect(tile).to_have_attribute("data-status", "unreported")

        principal.context.set_offline(False)
        expect(principal.locator("#net")).to_have_attribute("data-live", "true")
        expect(tile).to_have_attribute("data-status", "need_help")
        expect(tile).to_have_class("tile tile-red")
        expect(principal.locator("[data-testid=need-help]").first).to_be_visible()
        expect(principal.locator("[data-testid=timeline]")).to_contain_text("Needs help")
        assert any("after_seq=0" not in url for url in fills), fills
        assert principal.evaluate("window.__noReload") is True
    finally:
        end_if_active(served, run["id"])
