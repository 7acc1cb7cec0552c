"""Push alerts through the outbox: one per device, sent by the dispatcher with the real pywebpush client
to a fake push service that verifies VAPID and decrypts; honest statuses; receipts and acknowledgements."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from emergency.alerts.dispatcher import Dispatcher
from emergency.alerts.escalation import run_due_escalations
from emergency.alerts.models import DELIVERED, DRILL_LANE, FAILED, QUEUED, REAL_LANE, SENT, Alert, DispatcherHeartbeat
from emergency.playbooks.templates import DRILL_BANNER
from emergency.push.models import PushSubscription
from emergency.timeutil import utcnow
from tests.alerts.helpers import RecordingBudget, alerts, events, start

PAYLOAD_KEYS = {"v", "run_id", "school_id", "school", "action", "directive", "drill", "occasion", "title", "body",
                "requires_ack", "url", "alert_id", "receipt"}


def send_all(app, session) -> None:
    session.commit()
    app.extensions["dispatcher"].drain()


@pytest.fixture
def drill_answered(app, session, login, school, principal, teacher, push_service, subscribe):
    """The teacher's one device; its push service answers `status` once; a drill starts and is sent.

    Returns (device, run, the teacher's push alert).
    """

    def do(status: int | None = None, retry_after: str | None = None):
        device = subscribe(login(teacher), push_service)
        if status:
            push_service.answer(device, status, retry_after=retry_after)
        run = start(app, principal, school)
        send_all(app, session)
        [push] = alerts(session, run, person_id=teacher.id, channel="push")
        return device, run, push

    return do


def test_a_drill_push_reaches_each_of_a_teachers_devices(app, session, client, login, school, principal, teacher,
                                                        push_service, subscribe):
    headers = login(teacher)
    phone, tablet = subscribe(headers, push_service), subscribe(headers, push_service)
    run = start(app, principal, school)
    pushes = alerts(session, run, person_id=teacher.id, channel="push")
    assert sorted(a.subscription_id for a in pushes) == sorted([phone.subscription_id, tablet.subscription_id])
    assert all(a.status == QUEUED for a in pushes)
    send_all(app, session)
    push_service.wait_for(2)
    payload = push_service.for_device(phone)[0]
    assert set(payload) == PAYLOAD_KEYS  # run, school, action, directive, drill flag: nothing about students
    assert payload["run_id"] == run.id and payload["drill"] is True and payload["action"] == "Lockdown"
    assert payload["directive"] == "Locks, lights, out of sight." and payload["school"] == school.name
    assert payload["title"].startswith(DRILL_BANNER)
    assert payload["requires_ack"] is True and "Reply OK" not in payload["body"]
    assert payload["url"] == f"/#/run/{run.id}"
    assert push_service.for_device(tablet)[0]["alert_id"] != payload["alert_id"]
    received = push_service.received[0]
    assert (received.urgency, received.ttl) == ("normal", 900)
    assert all(a.status == SENT for a in alerts(session, run, person_id=teacher.id, channel="push"))


def test_a_real_run_is_sent_urgent_with_a_short_ttl_and_no_banner(app, session, login, school, principal, teacher,
                                                                 push_service, subscribe):
    subscribe(login(teacher), push_service)
    run = start(app, principal, school, mode="real")
    send_all(app, session)
    received = push_service.wait_for(1)[0]
    assert (received.urgency, received.ttl) == ("high", 120)
    assert received.payload["drill"] is False
    assert received.payload["title"] == f"LOCKDOWN — {school.name}"
    assert DRILL_BANNER not in received.payload["title"] + received.payload["body"]
    assert received.payload["run_id"] == run.id


def test_without_a_device_push_is_the_live_event_only(app, session, school, principal, teacher):
    run = start(app, principal, school)
    [push] = alerts(session, run, person_id=teacher.id, channel="push")
    assert push.status == SENT and push.subscription_id is None


@pytest.mark.parametrize("status", [410, 404])
def test_a_gone_subscription_is_removed_and_the_lost_channel_recorded(session, client, login, school, principal,
                                                                     drill_answered, status):
    device, run, push = drill_answered(status)
    assert push.status == FAILED and push.attempts == 1
    assert "removed" in push.error_message
    assert session.get(PushSubscription, device.subscription_id) is None
    [removed] = events(session, run, "push.device_removed")
    assert removed.payload["recipient"] == "Tess Teacher" and removed.payload["devices_left"] == 0
    assert [e.payload["channel"] for e in events(session, run, "alert.failed")] == ["push"]
    coverage = client.get(f"/api/v1/schools/{school.id}/push", headers=login(principal)).get_json()
    assert coverage["staff_with_push"] == 0


@pytest.mark.parametrize("status", [413, 400])
def test_a_refused_payload_fails_for_good_and_keeps_the_device(session, drill_answered, status):
    device, _run, push = drill_answered(status)
    assert push.status == FAILED and push.attempts == 1
    assert session.get(PushSubscription, device.subscription_id) is not None


def test_rate_limited_pushes_wait_at_least_retry_after(app, session, push_service, drill_answered):
    _device, run, push = drill_answered(429, retry_after="45")
    assert push.status == QUEUED and push.attempts == 1
    assert push.next_attempt_at - utcnow() > timedelta(seconds=40)
    session.execute(update(Alert).where(Alert.id == push.id).values(next_attempt_at=utcnow()))
    send_all(app, session)
    push_service.wait_for(1)
    assert alerts(session, run, id=push.id)[0].status == SENT


def test_a_server_error_is_retried(drill_answered):
    _device, _run, push = drill_answered(503)
    assert push.status == QUEUED and push.error_message.endswith("(HTTP 503)")


def test_the_service_worker_reports_receipt_and_the_alert_is_delivered(app, session, client, login, school, principal,
                                                                      teacher, push_service, subscribe):
    subscribe(login(teacher), push_service)
    run = start(app, principal, school)
    send_all(app, session)
    payload = push_service.wait_for(1)[0].payload
    path = f"/api/v1/runs/{run.id}/alerts/{payload['alert_id']}/received"
    for _ in range(2):  # a repeat changes nothing
        response = client.post(path, json={"receipt": payload["receipt"]})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["status"] == DELIVERED
    assert alerts(session, run, id=payload["alert_id"])[0].delivered_at is not None


def test_a_wrong_receipt_is_refused(app, session, client, login, school, principal, teacher, push_service, subscribe):
    subscribe(login(teacher), push_service)
    run = start(app, principal, school)
    send_all(app, session)
    payload = push_service.wait_for(1)[0].payload
    response = client.post(f"/api/v1/runs/{run.id}/alerts/{payload['alert_id']}/received",
                           json={"receipt": "A" * 24})
    assert response.status_code == 403
    assert client.post(f"/api/v1/runs/{run.id}/alerts/{payload['alert_id']}/received").status_code == 401


def test_the_recipients_own_login_also_works_but_nobody_elses(app, session, client, login, school, principal,
                                                             teacher, push_service, subscribe):
    headers = login(teacher)
    subscribe(headers, push_service)
    run = start(app, principal, school)
    [push] = alerts(session, run, person_id=teacher.id, channel="push")
    path = f"/api/v1/runs/{run.id}/alerts/{push.id}/received"
    assert client.post(path, headers=login(principal), json={}).status_code == 404
    assert client.post(path, headers=headers, json={}).status_code == 200


def test_acknowledge_from_the_notification_stops_the_escalation(app, session, client, login, school, principal,
                                                               teacher, push_service, subscribe, pushes):
    subscribe(login(teacher), push_service)
    run = start(app, principal, school)
    send_all(app, session)
    payload = push_service.wait_for(1)[0].payload
    response = client.post(f"/api/v1/runs/{run.id}/alerts/{payload['alert_id']}/ack",
                           json={"receipt": payload["receipt"]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["channel"] == "push" and response.get_json()["created"] is True
    assert all(a.acknowledged_at for a in alerts(session, run, person_id=teacher.id))
    [ack] = events(session, run, "ack.recorded")
    assert ack.payload["name"] == "Tess Teacher" and ack.payload["channel"] == "push"
    session.execute(update(Alert).where(Alert.run_id == run.id, Alert.escalate_at.is_not(None))
                    .values(escalate_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    run_due_escalations(session)
    assert alerts(session, run, person_id=teacher.id, channel="voice") == []


def test_an_unacknowledged_push_escalates_to_a_call_as_before(app, session, login, school, principal, teacher,
                                                              push_service, subscribe):
    subscribe(login(teacher), push_service)
    run = start(app, principal, school)
    [primary] = [a for a in alerts(session, run, person_id=teacher.id) if a.escalate_at]
    assert primary.channel == "push" and primary.subscription_id is not None
    session.execute(update(Alert).where(Alert.id == primary.id).values(escalate_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert run_due_escalations(session) == 1
    [call] = alerts(session, run, person_id=teacher.id, channel="voice")
    assert call.to_number == teacher.mobile
    assert "http" not in call.body and "Reply OK" not in call.body


def test_staff_texts_carry_the_run_link_and_partner_texts_do_not(app, session, school, principal, teacher,
                                                                 make_partner):
    partner = make_partner([school])
    run = start(app, principal, school, mode="real")
    link = f"http://testserver/r/{run.id}"
    [staff_sms] = alerts(session, run, person_id=teacher.id, channel="sms")
    assert staff_sms.body.endswith(link)
    [partner_sms] = alerts(session, run, partner_id=partner.id, channel="sms")
    assert "http" not in partner_sms.body and "/r/" not in partner_sms.body


@pytest.mark.parametrize("app_overrides", [{"STAFF_SMS_LINKS": False}])
def test_links_can_be_turned_off(app, session, school, principal, teacher):
    run = start(app, principal, school)
    [staff_sms] = alerts(session, run, person_id=teacher.id, channel="sms")
    assert "http" not in staff_sms.body


def test_the_short_link_opens_the_run_and_logs_nobody_in(client):
    response = client.get("/r/42")
    assert response.status_code == 302
    assert response.headers["Location"] == "/#/run/42"
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("app_overrides", [{"ENV": "production", "VAPID_PRIVATE_KEY": ""}])
def test_without_a_vapid_key_push_is_off_and_says_so(app, client, login, teacher, push_service):
    headers = login(teacher)
    assert client.get("/api/v1/push/config", headers=headers).get_json() == {"enabled": False, "public_key": None}
    response = client.post("/api/v1/me/push-subscriptions", headers=headers,
                           json=push_service.new_device().subscription())
    assert response.status_code == 403


def test_a_running_dispatcher_sends_pushes_and_records_them_sent(app, session, login, school, principal, teacher,
                                                                 make_person, push_service, subscribe):
    devices = [subscribe(login(teacher), push_service)]
    for n in range(5):
        devices.append(subscribe(login(make_person("teacher", [school], name=f"Teacher {n}")), push_service))
    run = start(app, principal, school)
    session.commit()
    dispatcher = app.extensions["dispatcher"]
    thread = threading.Thread(target=dispatcher.run_forever, kwargs={"idle_sleep": 0.05}, daemon=True)
    thread.start()
    try:
        push_service.wait_for(len(devices))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(a.status != SENT for a in alerts(session, run, channel="push")):
            session.rollback()
            time.sleep(0.05)
    finally:
        dispatcher.stop()
        thread.join(10)
    pushed = alerts(session, run, channel="push")
    assert len(pushed) == len(devices) + 1  # the principal has no device: the live event only
    assert all(a.status == SENT and a.sent_at and a.deadline_at is None for a in pushed)


# -- push alerts in the district-wide delivery queue (issue 20's lanes, turns, budgets, liveness) -------------

def _staff_with_devices(make_school, make_person, login, subscribe, push_service, name: str, teachers: int = 3):
    school = make_school(name=name)
    admin = make_person("school_admin", [school], name=f"Admin of {name}")
    for n in range(teachers):
        subscribe(login(make_person("teacher", [school], name=f"Teacher {n} of {name}")), push_service)
    return school, admin


def test_a_real_runs_pushes_are_claimed_before_every_drill_push(app, session, login, make_school, make_person,
                                                               subscribe, push_service):
    north, north_admin = _staff_with_devices(make_school, make_person, login, subscribe, push_service, "North")
    west, west_admin = _staff_with_devices(make_school, make_person, login, subscribe, push_service, "West")
    drill = start(app, north_admin, north)
    real = start(app, west_admin, west, mode="real")
    session.commit()
    claimed = app.extensions["dispatcher"].claim("push", limit=100)
    assert [c.run_id for c in claimed] == [real.id] * 3 + [drill.id] * 3, "lane: real before drill"
    assert {a.lane for a in alerts(session, real, channel="push")} == {REAL_LANE}
    assert {a.lane for a in alerts(session, drill, channel="push")} == {DRILL_LANE}


def test_drill_pushes_at_two_schools_go_round_robin(app, session, login, make_school, make_person, subscribe,
                                                    push_service):
    north, north_admin = _staff_with_devices(make_school, make_person, login, subscribe, push_service, "North")
    south, south_admin = _staff_with_devices(make_school, make_person, login, subscribe, push_service, "South")
    first, second = start(app, north_admin, north), start(app, south_admin, south)
    session.commit()
    claimed = app.extensions["dispatcher"].claim("push", limit=100)
    assert [c.run_id for c in claimed] == [first.id, second.id] * 3, "the second school hears in the first round"


def test_a_dead_dispatchers_push_claims_are_taken_over(app, session, login, make_school, make_person, subscribe,
                                                       push_service):
    north, north_admin = _staff_with_devices(make_school, make_person, login, subscribe, push_service, "North")
    run = start(app, north_admin, north)
    session.commit()
    survivor = app.extensions["dispatcher"]
    dead = Dispatcher(survivor.sessions, survivor.provider, survivor.settings, push=survivor.push)
    taken = {c.id for c in dead.claim("push", limit=2)}  # then the process is killed with -9
    assert not taken & {c.id for c in survivor.claim("push", limit=100)}, "a live dispatcher's claims are its own"
    session.execute(update(DispatcherHeartbeat).where(DispatcherHeartbeat.id == dead.identity)
                    .values(seen_at=utcnow() - timedelta(seconds=survivor.settings.liveness_seconds + 1)))
    session.commit()
    assert {c.id for c in survivor.claim("push", limit=100)} == taken
    assert {(a.claimed_by, a.attempts) for a in alerts(session, run, channel="push") if a.id in taken} == \
        {(survivor.identity, 2)}


def test_pushes_take_their_own_unpaced_budget_never_the_call_rate(app, session, login, school, principal, teacher,
                                                                  push_service, subscribe):
    subscribe(login(teacher), push_service)
    dispatcher = app.extensions["dispatcher"]
    dispatcher.budget = RecordingBudget()
    taken = dispatcher.budget.taken
    dispatcher.settings.calls_per_second = 1.0
    start(app, principal, school)
    send_all(app, session)
    push_service.wait_for(1)
    assert ("push", 0.0) in taken
    assert ("voice", 1.0) not in taken, "no call was due: a push never waits for the calls' pace"


def test_run_alerts_count_the_pushes_still_to_send(app, client, session, login, school, principal, teacher,
                                                   make_person, push_service, subscribe):
    subscribe(login(teacher), push_service)
    subscribe(login(make_person("teacher", [school], name="Second Teacher")), push_service)
    run = start(app, principal, school)
    session.commit()
    view = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(principal)).get_json()
    assert view["queue"]["push"] == {"waiting": 2, "ahead": 0, "eta_seconds": None}, "not paced: no estimate"
    assert view["summary"]["by_channel"]["push"] == {"queued": 2, "sent": 1}  # the principal: live event only
    app.extensions["dispatcher"].drain()
    push_service.wait_for(2)
    done = client.get(f"/api/v1/runs/{run.id}/alerts", headers=login(principal)).get_json()
    assert done["queue"]["push"] == {"waiting": 0, "ahead": 0, "eta_seconds": 0.0}
    assert done["summary"]["by_channel"]["push"] == {"sent": 3}
