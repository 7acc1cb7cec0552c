"""The console in headless Chromium against a served demo instance (`emergency serve --demo`).

Two phones at once: the principal's and a teacher's, each a separate browser context with its own
storage, talking to the same server over HTTP and Socket.IO, exactly as two people would. Every
screen is checked with axe-core (no serious or critical violation).
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.console.a11y import assert_accessible, serious_violations
from tests.console.conftest import log_in
from tests.console.served import PARTNER, PRINCIPAL, TEACHER, browser_missing

pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser_missing() is not None,
                                                      reason=f"browser tests need {browser_missing()}")]

COUNT_TAPS = """() => {
    window.__taps = 0;
    document.addEventListener("pointerdown", () => { window.__taps += 1; }, true);
}"""


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


def principal_on_board(phone, run: dict):
    """The principal's phone, showing the run's board."""
    principal = phone(PRINCIPAL)
    principal.goto(f"/#/run/{run['id']}/board")
    return principal


def wait_for_service_worker(page) -> None:
    """The app shell is cached and the worker controls the page (what an offline reload needs)."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_function("navigator.serviceWorker.controller !== null")


def test_principal_starts_a_drill_teacher_counts_22_and_1_missing_in_few_taps_principal_sees_the_name(
        served, phone, axe):
    from playwright.sync_api import expect

    principal = phone(PRINCIPAL)
    assert_accessible(principal, axe, "home (principal)")
    principal.click("[data-testid=start-PCMS]")
    # Nothing has started: no DRILL or REAL EMERGENCY banner on the start screen.
    expect(principal.locator("#mode-banner")).to_be_hidden()
    expect(principal.locator("[data-testid=mode-drill]")).to_have_attribute("aria-checked", "true")
    assert_accessible(principal, axe, "start")
    principal.click("[data-testid=playbook-lockdown]")
    assert_accessible(principal, axe, "start: confirm a drill")
    teacher = phone(TEACHER)
    principal.click("[data-testid=confirm-start]")
    principal.wait_for_url("**/#/run/*/board")
    run_id = int(principal.url.split("/run/")[1].split("/")[0])
    try:
        room = home_room(served)
        tile = principal.locator(f"[data-testid=room-tile][data-room-id='{room['id']}']")
        expect(tile).to_have_attribute("data-status", "unreported")
        expect(principal.locator("#mode-banner")).to_have_text("DRILL — THIS IS A DRILL")
        assert_accessible(principal, axe, "board")
        principal.evaluate("window.__noReload = true")

        # The teacher's phone was on the home screen: the live region announces the new alert.
        expect(teacher.locator("[data-testid=announcer]")).to_contain_text("DRILL: Lockdown")
        card = teacher.locator(f"[data-testid=active-run][data-run-id='{run_id}']")
        expect(card).to_contain_text("DRILL")
        teacher.evaluate(COUNT_TAPS)
        card.get_by_role("link", name="Check in my room").click()                        # tap 1
        expect(teacher.locator("#mode-banner")).to_have_text("DRILL — THIS IS A DRILL")
        expect(teacher.locator("[data-testid=room]")).to_have_value(str(room["id"]))
        present = teacher.locator("[data-testid=count-present]")
        expect(present).to_have_value(str(room["capacity"]))  # pre-filled from the room's expected count
        assert_accessible(teacher, axe, "check-in")
        present.click()                                                                 # tap 2
        present.press_sequentially("22")
        teacher.click("[data-testid=plus-missing]")                                     # tap 3
        expect(present).to_have_value("22")
        teacher.locator("[data-testid=missing-name]").click()                           # tap 4
        teacher.locator("[data-testid=missing-name]").press_sequentially("Ana Bell")
        send = teacher.locator("[data-testid=send-checkin]")
        expect(send).to_have_text("Send: 22 present, 1 missing")
        send.click()                                                                    # tap 5
        expect(teacher.locator("[data-testid=sent]").first).to_contain_text("Check-in")
        assert teacher.evaluate("window.__taps") < 6

        # The principal sees the name within a second, without a reload, on an amber tile at the top.
        problem = principal.locator("[data-testid=problem-rooms]")
        expect(problem.locator("[data-testid=tile-names]")).to_contain_text("Ana Bell", timeout=1000)
        expect(tile).to_have_attribute("data-attention", "missing")
        expect(tile).to_have_class(re.compile(r"\btile-amber\b"))
        expect(principal.locator("[data-testid=total-missing]")).to_have_text("1")
        expect(principal.locator("[data-testid=total-present]")).to_have_text("22")
        assert principal.evaluate("window.__noReload") is True
        tile.click()
        panel = principal.locator("[data-testid=room-panel]")
        expect(panel).to_contain_text("Ana Bell")
        expect(panel).to_contain_text("Zoë O'Brien-Núñez")  # who reported
        assert_accessible(principal, axe, "board: room details")
        panel.get_by_role("button", name="Close").click()

        # "Started 0s ago" moves on its own.
        started = principal.locator("p.muted .since").first
        first = started.text_content()
        principal.wait_for_timeout(2100)
        assert started.text_content() != first

        # The all-clear shows what is still open first.
        principal.click("[data-testid=all-clear]")
        items = principal.locator("[data-testid=open-items]")
        expect(items).to_contain_text("1 student missing: Ana Bell")
        expect(items).to_contain_text("not reported")
        assert_accessible(principal, axe, "all clear: open items")
        principal.click("[data-testid=confirm-all-clear]")
        expect(principal.locator("[data-testid=run-ended]")).to_contain_text("ALL CLEAR")
        expect(principal.locator("#mode-banner")).to_contain_text("ALL CLEAR")
        expect(teacher.locator("[data-testid=run-ended]")).to_contain_text("ALL CLEAR")
        expect(teacher.locator("[data-testid=announcer]")).to_contain_text("All clear")
        assert_accessible(teacher, axe, "check-in after the all clear")
        assert served.get(PRINCIPAL, f"/runs/{run_id}")["end_reason"] == "all_clear"
        checkins = served.get(PRINCIPAL, f"/runs/{run_id}/checkins")["checkins"]
        assert [(c["room_id"], c["status"], c["present"], c["missing"], c["missing_students"]) for c in checkins] == [
            (room["id"], "students_missing", 22, 1, ["Ana Bell"])]
        assert not principal.js_errors and not teacher.js_errors
    finally:
        end_if_active(served, run_id)


def test_an_untouched_check_in_sends_nothing_and_an_empty_room_is_said_on_purpose(served, phone):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        teacher = phone(TEACHER)
        teacher.goto(f"/#/run/{run['id']}/checkin")
        present = teacher.locator("[data-testid=count-present]")
        present.fill("0")
        send = teacher.locator("[data-testid=send-checkin]")
        expect(send).to_be_disabled()
        expect(send).to_have_text("Count your students first")
        teacher.click("[data-testid=room-empty]")
        expect(send).to_have_text("Send: room empty")
        send.click()
        expect(teacher.locator("[data-testid=sent]").first).to_contain_text("room empty")
        checkins = served.get(PRINCIPAL, f"/runs/{run['id']}/checkins")["checkins"]
        assert [(c["status"], c["present"]) for c in checkins] == [("all_accounted", 0)]
    finally:
        end_if_active(served, run["id"])


def test_the_checklist_is_on_screen_and_a_tick_lands_on_the_timeline(served, phone, axe):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        principal = principal_on_board(phone, run)
        steps = principal.locator("[data-testid=checklist]")
        expect(steps).to_contain_text("Call 911 if police are not already informed.")
        principal.get_by_label("Call 911 if police are not already informed.").check()
        expect(steps).to_contain_text("✓")
        expect(principal.locator("[data-testid=timeline]")).to_contain_text("Done: Call 911")
        events = served.get(PRINCIPAL, f"/runs/{run['id']}/timeline")["events"]
        tick = next(e for e in events if e["type"] == "checklist.ticked")
        assert tick["actor"]["name"] and tick["at"] and tick["payload"]["done"] is True

        teacher = phone(TEACHER)
        teacher.goto(f"/#/run/{run['id']}/checkin")
        expect(teacher.locator("[data-testid=checklist]")).to_contain_text("Lock the door")
        expect(teacher.locator("[data-testid=checklist]")).not_to_contain_text("Call 911")
        assert_accessible(teacher, axe, "check-in with its checklist")
    finally:
        end_if_active(served, run["id"])


def test_an_offline_check_in_is_queued_then_sent_exactly_once(served, phone):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        teacher = phone(TEACHER)
        teacher.goto(f"/#/run/{run['id']}/checkin")
        expect(teacher.locator("[data-testid=send-checkin]")).to_be_visible()
        teacher.context.set_offline(True)
        expect(teacher.locator("#net")).to_have_text("Offline")
        teacher.locator("[data-testid=count-present]").fill("2")
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


def test_a_teacher_who_reloads_offline_can_still_check_in_and_the_app_recovers(served, phone, axe):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        teacher = phone(TEACHER)
        teacher.goto(f"/#/run/{run['id']}/checkin")
        expect(teacher.locator("[data-testid=send-checkin]")).to_be_visible()
        wait_for_service_worker(teacher)

        teacher.context.set_offline(True)
        teacher.reload()
        expect(teacher.locator("#net")).to_have_text("Offline")
        expect(teacher.locator("#mode-banner")).to_have_text("DRILL — THIS IS A DRILL")
        expect(teacher.get_by_text("Failed to fetch")).to_have_count(0)
        teacher.locator("[data-testid=count-present]").fill("20")
        teacher.click("[data-testid=send-checkin]")
        expect(teacher.locator("[data-testid=queued]")).to_contain_text("Queued on this phone")
        assert_accessible(teacher, axe, "check-in, offline")

        # A screen this phone never saved waits for the network, then opens by itself.
        teacher.goto("/#/compliance")
        expect(teacher.locator("[data-testid=waiting-for-network]")).to_be_visible()
        teacher.context.set_offline(False)
        expect(teacher.locator("[data-testid=waiting-for-network]")).to_have_count(0, timeout=15000)
        teacher.goto(f"/#/run/{run['id']}/checkin")
        expect(teacher.locator("[data-testid=sent]").first).to_contain_text("20 present")
        checkins = served.get(PRINCIPAL, f"/runs/{run['id']}/checkins")["checkins"]
        assert [(c["status"], c["present"]) for c in checkins] == [("all_accounted", 20)]
    finally:
        end_if_active(served, run["id"])


def test_a_real_start_needs_press_and_hold_and_partners_see_the_end_first(served, phone, axe):
    from playwright.sync_api import expect

    teacher = phone(TEACHER)
    teacher.click("[data-testid=start-PCMS]")
    expect(teacher.locator("[data-testid=mode-real]")).to_have_attribute("aria-checked", "true")
    expect(teacher.locator("#mode-banner")).to_be_hidden()
    teacher.click("[data-testid=playbook-lockdown]")
    hold = teacher.locator("[data-testid=confirm-start]")
    expect(hold).to_contain_text("Hold to start REAL LOCKDOWN")
    assert_accessible(teacher, axe, "start: confirm a real lockdown")
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
        assert_accessible(partner, axe, "home (partner)")
        card.get_by_role("link", name="Open live view").click()
        expect(partner.locator("#mode-banner")).to_have_text("REAL EMERGENCY")
        expect(partner.locator("[data-testid=run-header]")).to_contain_text("Lockdown")
        expect(partner.locator("[data-testid=send-update]")).to_have_count(0)
        served.post(PRINCIPAL, f"/runs/{run_id}/updates", {"message": "Police on site, north entrance."})
        expect(partner.locator("[data-testid=timeline]")).to_contain_text("Police on site, north entrance.")
        assert_accessible(partner, axe, "partner view")

        served.post(PRINCIPAL, f"/runs/{run_id}/all-clear", {"message": "Building cleared by police."})
        expect(partner.locator("#mode-banner")).to_contain_text("ALL CLEAR")
        expect(partner.locator("[data-testid=run-header] > :first-child")).to_contain_text("ALL CLEAR")
        expect(partner.locator("body")).not_to_have_class(re.compile(r"\bmode-real\b"))
        assert_accessible(partner, axe, "partner view after the all clear")
    finally:
        if served.get(PRINCIPAL, f"/runs/{run_id}")["state"] == "active":
            served.post(PRINCIPAL, f"/runs/{run_id}/cancel", {"reason": "browser test"})


def test_the_board_resynchronises_after_losing_its_connection(served, phone):
    from playwright.sync_api import expect

    run = start_drill(served)
    try:
        principal = principal_on_board(phone, run)
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
        expect(tile).to_have_class(re.compile(r"\btile-red\b"))
        expect(principal.locator("[data-testid=problem-rooms]")).to_contain_text("Needs help")
        expect(principal.locator("[data-testid=timeline]")).to_contain_text("Needs help")
        assert any("after_seq=0" not in url for url in fills), fills
        assert principal.evaluate("window.__noReload") is True
    finally:
        end_if_active(served, run["id"])


def test_login_and_compliance_screens_pass_axe(served, phone, axe):
    from playwright.sync_api import expect

    visitor = phone()
    visitor.wait_for_selector("#email")
    assert_accessible(visitor, axe, "login")
    # The check itself works: a button with no name is caught.
    visitor.evaluate("document.body.append(Object.assign(document.createElement('button'), {id: 'nameless'}))")
    assert "button-name" in [v["id"] for v in serious_violations(visitor, axe)]
    visitor.evaluate("document.getElementById('nameless').remove()")
    principal = phone(PRINCIPAL)
    principal.goto("/#/compliance")
    expect(principal.locator("[data-testid=requirements]")).to_be_visible()
    assert_accessible(principal, axe, "compliance")


def test_the_console_talks_over_a_websocket_that_carries_the_start(served, phone):
    """Chromium offers permessage-deflate; the server declines it and the console stays on the websocket.

    The console prefers the websocket transport and falls back to long-polling: a broken upgrade
    would pass unnoticed elsewhere, since polling also delivers events.
    """
    principal = phone()
    sockets, frames, polls, offered, answered = [], [], [], [], []
    devtools = principal.context.new_cdp_session(principal)
    devtools.send("Network.enable")
    devtools.on("Network.webSocketWillSendHandshakeRequest",
                lambda e: offered.append({k.lower(): v for k, v in e["request"]["headers"].items()}))
    devtools.on("Network.webSocketHandshakeResponseReceived",
                lambda e: answered.append({k.lower(): v for k, v in e["response"]["headers"].items()}))
    principal.on("websocket", lambda ws: (sockets.append(ws.url),
                                          ws.on("framereceived", lambda payload: frames.append(payload))))
    principal.on("request", lambda r: polls.append(r.url) if "transport=polling" in r.url else None)
    log_in(principal, PRINCIPAL)
    principal.wait_for_function("() => document.querySelector('#net')?.dataset.live === 'true'")
    run = start_drill(served)
    try:
        principal.wait_for_timeout(500)
        deadline = 50
        while not any("run.started" in str(f) for f in frames) and deadline:
            principal.wait_for_timeout(100)
            deadline -= 1
        assert any("/socket.io/" in url and "transport=websocket" in url for url in sockets), sockets
        assert any("run.started" in str(f) and str(run["id"]) in str(f) for f in frames)
        assert polls == []
        assert "permessage-deflate" in offered[0].get("sec-websocket-extensions", ""), offered
        assert "sec-websocket-extensions" not in answered[0], answered
    finally:
        end_if_active(served, run["id"])


def test_an_entry_the_board_missed_is_fetched_when_the_delivery_summary_is_ahead(served, phone):
    """An entry published while the board was still connecting, with no entry after it: the admins'
    delivery summary, which carries the run's last seq, makes the board fetch it."""
    from playwright.sync_api import expect
    from sqlalchemy import create_engine, func, insert, select, update

    from emergency.alerts.models import Alert
    from emergency.runs.models import Run, RunEvent
    from emergency.timeutil import utcnow

    run = start_drill(served)
    try:
        principal = principal_on_board(phone, run)
        timeline = principal.locator("[data-testid=timeline]")
        expect(timeline).to_contain_text("Started")
        expect(principal.locator("#net")).to_have_attribute("data-live", "true")
        me = served.get(PRINCIPAL, "/me")
        engine = create_engine(served.database_url)
        try:
            with engine.begin() as connection:
                # Written without a live push: as if the board had missed it while connecting.
                seq = connection.execute(select(Run.last_seq).where(Run.id == run["id"])).scalar_one() + 1
                connection.execute(update(Run).where(Run.id == run["id"]).values(last_seq=seq))
                connection.execute(insert(RunEvent).values(
                    run_id=run["id"], seq=seq, type="push.device_removed", actor={"kind": "system"},
                    payload={"recipient": "Missed Person", "devices_left": 0}, created_at=utcnow()))
            principal.wait_for_timeout(1000)
            expect(timeline).not_to_contain_text("Missed Person")
            with engine.begin() as connection:
                # One more text of the run, so the dispatcher pushes the admins a delivery summary.
                turn = connection.execute(select(func.max(Alert.turn))).scalar() or 0
                connection.execute(insert(Alert).values(
                    run_id=run["id"], event_seq=seq, occasion="update", person_id=me["id"],
                    recipient_name=me["name"], recipient_role=me["role"], to_number="+12125550123", channel="sms",
                    body="DRILL: test", priority=0, lane=1, turn=turn + 1, status="queued",
                    next_attempt_at=utcnow(), queued_at=utcnow()))
        finally:
            engine.dispose()
        expect(timeline).to_contain_text("Push notifications lost: Missed Person", timeout=15000)
    finally:
        end_if_active(served, run["id"])
