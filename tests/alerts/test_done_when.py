"""The issue's scenario end to end, over HTTP: a served app, the real twilio client, a fake Twilio.

Staff who reply "ok" are acknowledged; the one who does not reply gets a call, presses 1 and is
acknowledged; the one who never answers is shown to the principal as unreachable; and someone who
texted STOP gets a call instead of an SMS in the next drill. Status callbacks and inbound webhooks
travel over HTTP, signed for PUBLIC_BASE_URL, as Twilio sends them through a proxy.
"""

import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from emergency.alerts.models import Alert
from emergency.alerts.setup import start_dispatcher
from emergency.timeutil import utcnow
from tests.conftest import twilio_settings
from tests.served import ServedThread

PUBLIC = "http://testserver"


@pytest.fixture
def app_overrides(fake_twilio):
    return {**twilio_settings(fake_twilio), "CALLS_PER_SECOND": 0.0}


def _wait(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _due_now(session, **where):
    query = update(Alert).where(Alert.escalate_at.is_not(None), Alert.escalated_at.is_(None))
    for name, value in where.items():
        query = query.where(getattr(Alert, name) == value)
    session.execute(query.values(escalate_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_drill_acknowledgement_escalation_and_stop(app, session, fake_twilio, make_school, make_person, login):
    school = make_school(name="Port Chester Middle School")
    principal = make_person("school_admin", [school], name="Pat Principal")
    replies = make_person("teacher", [school], name="Rita Replies")
    silent = make_person("teacher", [school], name="Sam Silent")
    never = make_person("teacher", [school], name="Nora Never")
    stopper = make_person("teacher", [school], name="Stan Stop")
    admin_headers = login(principal)
    session.commit()

    with ServedThread(app) as served:
        fake_twilio.route(PUBLIC, served.url)
        start_dispatcher(app)
        try:
            # Stan texted STOP some time ago.
            assert fake_twilio.send_inbound_sms(f"{PUBLIC}/webhooks/twilio/sms", stopper.mobile, "STOP").ok
            run = requests.post(served.url + "/api/v1/runs", headers=admin_headers, timeout=10,
                                json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"}).json()
            texted = {principal.mobile, replies.mobile, silent.mobile, never.mobile}
            assert _wait(lambda: texted <= {m["to"] for m in fake_twilio.messages}), fake_twilio.messages
            assert all(m["body"].startswith("DRILL - THIS IS A DRILL.") for m in fake_twilio.messages)
            assert fake_twilio.messages_to(stopper.mobile) == []
            assert _wait(lambda: fake_twilio.calls_to(stopper.mobile)), "the STOP sender is called instead"

            # Rita replies "ok": acknowledged, with a confirmation naming the school and the action.
            reply = fake_twilio.send_inbound_sms(f"{PUBLIC}/webhooks/twilio/sms", replies.mobile, " ok ")
            assert "Confirmed" in reply.text and "Port Chester Middle School" in reply.text

            # Sam and Nora stay silent past the playbook's escalate_after_seconds: each gets a call.
            _due_now(session, person_id=silent.id)
            _due_now(session, person_id=never.id)
            assert _wait(lambda: fake_twilio.calls_to(silent.mobile) and fake_twilio.calls_to(never.mobile))
            call_id = session.scalar(select(Alert.id).where(Alert.person_id == silent.id, Alert.channel == "voice"))
            session.rollback()  # SQLite: an open transaction would hold the write lock the webhook needs
            twiml = fake_twilio.post_signed(f"{PUBLIC}/webhooks/twilio/voice/{call_id}", {"CallSid": "CA1"}).text
            assert "DRILL" in twiml and "Press 1" in twiml
            pressed = fake_twilio.post_signed(f"{PUBLIC}/webhooks/twilio/voice/{call_id}/gather",
                                              {"CallSid": "CA1", "Digits": "1"})
            assert "recorded" in pressed.text

            # Nora never answers her call either: the principal is told, and the board shows her.
            session.rollback()
            _due_now(session, person_id=never.id, channel="voice")
            assert _wait(lambda: any("Nora Never" in m["body"] for m in fake_twilio.messages_to(principal.mobile)))
            notice = [m for m in fake_twilio.messages_to(principal.mobile) if "Nora Never" in m["body"]][0]
            assert never.mobile not in notice["body"]

            # Delivery statuses came back through signed callbacks and show on the run.
            assert _wait(lambda: requests.get(served.url + f"/api/v1/runs/{run['id']}/alerts", headers=admin_headers,
                                              timeout=10).json()["summary"]["by_status"].get("delivered", 0) >= 4)
            listing = requests.get(served.url + f"/api/v1/runs/{run['id']}/alerts", headers=admin_headers,
                                   timeout=10).json()
            acked = {r["name"]: r["ack_channel"] for r in listing["recipients"] if r.get("acknowledged_at")}
            assert acked.get("Rita Replies") == "sms"
            assert acked.get("Sam Silent") == "voice"
            assert "Nora Never" not in acked
            events = requests.get(served.url + f"/api/v1/runs/{run['id']}/timeline", headers=admin_headers,
                                  timeout=10).json()["events"]
            unreachable = [e for e in events if e["type"] == "recipient.unreachable"]
            assert [e["payload"]["name"] for e in unreachable] == ["Nora Never"]
        finally:
            app.extensions["dispatcher"].stop()
            app.extensions["dispatcher_thread"].join(10)


def test_demo_middle_school_lockdown_drill_reaches_every_staff_member_once(app, session, fake_twilio):
    """Alert delivery's scenario on the demo district: every PCMS staff member once, with the banner."""
    from collections import Counter

    from emergency.demo import ensure_demo
    from emergency.directory.models import School
    from emergency.directory.service import people_of

    ensure_demo(session, app)
    session.commit()
    school = session.scalar(select(School).where(School.code == "PCMS"))
    reachable = {p.mobile for p in people_of(session, school.id) if p.mobile}
    school_id = school.id
    session.rollback()  # SQLite: an open transaction would hold the write lock the server needs
    with ServedThread(app) as served:
        fake_twilio.route(PUBLIC, served.url)
        token = requests.post(served.url + "/api/v1/auth/login", timeout=10, json={
            "email": "thomas.oneill@pcsd.example.org", "password": "demo-password"}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        run = requests.post(served.url + "/api/v1/runs", headers=headers, timeout=10,
                            json={"school_id": school_id, "playbook": "lockdown", "mode": "drill"}).json()
        app.extensions["dispatcher"].drain()
        received = Counter(m["to"] for m in fake_twilio.messages)
        assert set(received) == reachable and set(received.values()) == {1}
        assert all(m["body"].startswith("DRILL - THIS IS A DRILL.") for m in fake_twilio.messages)
        assert _wait(lambda: requests.get(served.url + f"/api/v1/runs/{run['id']}/alerts", headers=headers,
                                          timeout=10).json()["summary"]["by_status"].get("delivered", 0)
                     == len(reachable)), "every message's delivery callback shows on the run"


def test_callback_that_beats_the_stored_sid_is_not_lost(app, session, fake_twilio, make_school, make_person, login):
    """Twilio may call back before the create request has returned the SID to the dispatcher."""
    from emergency.alerts.models import DELIVERED, SENDING
    from emergency.alerts.signature import sign

    school = make_school()
    principal = make_person("school_admin", [school])
    headers = login(principal)
    client = app.test_client()
    run_id = client.post("/api/v1/runs", headers=headers,
                         json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"}).get_json()["id"]
    dispatcher = app.extensions["dispatcher"]
    claimed = dispatcher.claim("sms")[0]  # claimed, sent, but the SID is not stored yet
    path = f"/webhooks/twilio/status?alert={claimed.id}"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    response = client.post(path, data=params,
                           headers={"X-Twilio-Signature": sign(fake_twilio.auth_token, PUBLIC + path, params)})
    assert response.status_code == 204
    dispatcher.accepted.note(claimed.id, "SM" + "a" * 32, "queued")  # the create request returns afterwards
    dispatcher.record_accepted()
    alert = session.get(Alert, claimed.id, populate_existing=True)
    assert (alert.status, alert.provider_sid) == (DELIVERED, "SM" + "a" * 32)
    assert alert.status != SENDING and run_id


def test_duplicated_and_reordered_callbacks_never_move_a_status_back(app, session, fake_twilio, make_school,
                                                                     make_person, login):
    """The fake sends each callback twice and the final status first, over HTTP, signed."""
    school = make_school()
    principal = make_person("school_admin", [school])
    teachers = [make_person("teacher", [school]) for _ in range(5)]
    fake_twilio.configure(duplicate_callbacks=True, reorder_callbacks=True)
    fake_twilio.set_outcome(teachers[0].mobile, "undelivered", error_code=30007)
    headers = login(principal)
    session.commit()
    with ServedThread(app) as served:
        fake_twilio.route(PUBLIC, served.url)
        run = requests.post(served.url + "/api/v1/runs", headers=headers, timeout=10,
                            json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"}).json()
        app.extensions["dispatcher"].drain()
        expected = 2 * 3 * (len(teachers) + 1)  # queued, sent, final; each twice
        assert _wait(lambda: len(fake_twilio.callback_log) >= expected)
        time.sleep(0.3)  # the last duplicates are in flight
        listing = requests.get(served.url + f"/api/v1/runs/{run['id']}/alerts", headers=headers, timeout=10).json()
    sms = {r["name"]: a for r in listing["recipients"] for a in r["alerts"] if a["channel"] == "sms"}
    assert sms[teachers[0].name]["status"] == "undelivered" and sms[teachers[0].name]["error_code"] == 30007
    assert all(sms[t.name]["status"] == "delivered" for t in teachers[1:])
    assert sms[principal.name]["status"] == "delivered"
