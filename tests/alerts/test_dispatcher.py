"""The dispatcher against a fake Twilio server, driven through the real twilio client."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from emergency.alerts.budgets import RateLimiter
from emergency.alerts.dispatcher import Dispatcher
from emergency.alerts.models import FAILED, QUEUED, SENDING, SENT, Alert, OptOut
from emergency.alerts.outbox import QUEUED_IN_SESSION
from emergency.playbooks.templates import DRILL_BANNER
from emergency.timeutil import utcnow
from tests.conftest import twilio_settings


@pytest.fixture
def app_overrides(fake_twilio):
    fake_twilio.configure(callbacks=False)
    return {**twilio_settings(fake_twilio), "DISPATCH_CONCURRENCY": 8, "SMS_PER_SECOND": 0.0}


@pytest.fixture
def staffed(make_school, make_person):
    school = make_school(name="Port Chester Middle School")
    admin = make_person("school_admin", [school], name="Ada Admin")
    teachers = [make_person("teacher", [school], name=f"Teacher {n}") for n in range(12)]
    return school, admin, teachers


def _drill(client, login, school, admin, playbook="lockdown", mode="drill"):
    response = client.post("/api/v1/runs", headers=login(admin),
                           json={"school_id": school.id, "playbook": playbook, "mode": mode, "confirm": True})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _dispatcher(app) -> Dispatcher:
    return app.extensions["dispatcher"]


def test_drill_reaches_every_staff_member_once_with_the_banner(app, client, login, staffed, fake_twilio, session):
    school, admin, teachers = staffed
    run_id = _drill(client, login, school, admin)
    session.commit()
    _dispatcher(app).drain()
    received = Counter(m["to"] for m in fake_twilio.messages)
    for person in [admin, *teachers]:
        assert received[person.mobile] == 1, person.name
    assert all(m["body"].startswith(DRILL_BANNER) for m in fake_twilio.messages)
    statuses = {a.status for a in session.scalars(select(Alert).where(Alert.run_id == run_id,
                                                                      Alert.channel == "sms"))}
    assert statuses == {SENT}
    sids = [a.provider_sid for a in session.scalars(select(Alert).where(Alert.channel == "sms"))]
    assert all(s and s.startswith("SM") for s in sids)


def test_priority_order_admins_before_teachers(app, client, login, staffed, fake_twilio, session):
    school, admin, teachers = staffed
    _drill(client, login, school, admin)
    session.commit()
    dispatcher = _dispatcher(app)
    dispatcher.settings.concurrency = 1
    dispatcher.pool._max_workers = 1
    dispatcher.drain()
    assert fake_twilio.messages[0]["to"] == admin.mobile


def test_429_burst_and_500_are_retried_with_backoff(app, client, login, staffed, fake_twilio, session):
    school, admin, teachers = staffed
    fake_twilio.fail_next(3, http_status=429)
    fake_twilio.fail_next(2, http_status=500)
    run_id = _drill(client, login, school, admin)
    session.commit()
    dispatcher = _dispatcher(app)
    dispatcher.run_once()
    retrying = list(session.scalars(select(Alert).where(Alert.run_id == run_id, Alert.status == QUEUED)))
    session.rollback()
    assert len(retrying) == 5
    assert {a.error_code for a in retrying} <= {20429, 20500, 20503}
    assert all(a.next_attempt_at > utcnow() for a in retrying)
    _make_due(session)
    dispatcher.drain()
    assert Counter(m["to"] for m in fake_twilio.messages) == Counter(p.mobile for p in [admin, *teachers])
    session.expire_all()
    attempts = {a.recipient_name: a.attempts for a in session.scalars(select(Alert).where(Alert.channel == "sms"))}
    assert sorted(attempts.values())[-5:] == [2, 2, 2, 2, 2]


def _make_due(session):
    session.execute(update(Alert).where(Alert.status == QUEUED).values(next_attempt_at=utcnow()))
    session.commit()


@pytest.mark.parametrize("code", [21211, 21614, 21610])
def test_permanent_errors_fail_at_once_with_code_and_reason(app, client, login, staffed, fake_twilio, session,
                                                            code):
    school, admin, teachers = staffed
    fake_twilio.fail_number(teachers[0].mobile, code=code)
    run_id = _drill(client, login, school, admin)
    session.commit()
    _dispatcher(app).run_once()
    alert = session.scalar(select(Alert).where(Alert.run_id == run_id, Alert.person_id == teachers[0].id,
                                               Alert.channel == "sms"))
    assert alert.status == FAILED and alert.attempts == 1 and alert.error_code == code
    assert alert.error_message
    events = client.get(f"/api/v1/runs/{run_id}/timeline", headers=login(admin)).get_json()["events"]
    failed = [e for e in events if e["type"] == "alert.failed"]
    assert failed and failed[0]["payload"]["error_code"] == code
    if code == 21610:
        assert session.scalar(select(OptOut).where(OptOut.number == teachers[0].mobile)) is not None
        call = session.scalar(select(Alert).where(Alert.run_id == run_id, Alert.person_id == teachers[0].id,
                                                  Alert.channel == "voice"))
        assert call is not None and call.status == QUEUED


def test_slow_provider_times_out_and_is_retried(app, client, login, staffed, fake_twilio, session):
    school, admin, teachers = staffed
    from emergency.alerts.providers import TwilioProvider

    impatient = TwilioProvider(fake_twilio.account_sid, fake_twilio.auth_token, from_number="+15005550006",
                               api_base=fake_twilio.base_url, timeout=0.3)
    dispatcher = Dispatcher(_dispatcher(app).sessions, impatient, _dispatcher(app).settings)
    fake_twilio.configure(latency=1.0)
    run_id = _drill(client, login, school, admin)
    session.commit()
    dispatcher.run_once()
    session.expire_all()
    statuses = Counter(a.status for a in session.scalars(select(Alert).where(Alert.run_id == run_id,
                                                                             Alert.channel == "sms")))
    session.rollback()
    assert statuses == {QUEUED: 13}


def test_gives_up_after_max_attempts(app, client, login, staffed, fake_twilio, session):
    school, admin, teachers = staffed
    dispatcher = _dispatcher(app)
    dispatcher.settings.max_attempts = 2
    fake_twilio.fail_next(100, http_status=503)
    run_id = _drill(client, login, school, admin)
    session.commit()
    dispatcher.run_once()
    _make_due(session)
    dispatcher.run_once()
    session.expire_all()
    statuses = {a.status for a in session.scalars(select(Alert).where(Alert.run_id == run_id,
                                                                      Alert.channel == "sms"))}
    assert statuses == {FAILED}


def test_alert_stuck_in_sending_past_its_deadline_is_sent_again(app, client, login, staffed, fake_twilio, session):
    school, admin, teachers = staffed
    _drill(client, login, school, admin)
    session.commit()
    dispatcher = _dispatcher(app)
    claimed = dispatcher.claim("sms", limit=3)  # then the process "dies" without sending
    assert len(claimed) == 3
    dispatcher.drain()
    assert len(fake_twilio.messages) == 10, "claimed alerts wait for their deadline"
    session.execute(update(Alert).where(Alert.status == SENDING).values(deadline_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    dispatcher.drain()
    assert Counter(m["to"] for m in fake_twilio.messages) == Counter(p.mobile for p in [admin, *teachers])


def test_two_dispatchers_never_send_the_same_alert(app, client, login, make_school, make_person, fake_twilio,
                                                   session):
    school = make_school()
    admin = make_person("school_admin", [school])
    people = [make_person("teacher", [school]) for _ in range(60)]
    _drill(client, login, school, admin)
    session.commit()
    fake_twilio.configure(latency=0.01)
    first = _dispatcher(app)
    second = Dispatcher(first.sessions, first.provider, first.settings)
    threads = [threading.Thread(target=d.drain) for d in (first, second, first.__class__(
        first.sessions, first.provider, first.settings))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    received = Counter(m["to"] for m in fake_twilio.messages)
    assert received == Counter(p.mobile for p in [admin, *people])


def test_rate_limiter_spaces_sends():
    clock = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)

    limiter = RateLimiter(4.0, clock=lambda: clock[0], sleep=sleep)
    for _ in range(4):
        limiter.acquire()
    assert slept == pytest.approx([0.25, 0.5, 0.75])
    assert RateLimiter(0).interval == 0


@pytest.mark.parametrize("answer, status, final", [("queued", "sent", False), ("delivered", "delivered", True),
                                                   ("completed", "completed", True)])
def test_what_the_provider_answers_to_a_send_is_recorded_as_a_callback_would_record_it(
        app, client, login, staffed, session, answer, status, final):
    school, admin, _ = staffed
    run_id = _drill(client, login, school, admin)
    alert = session.scalars(select(Alert).where(Alert.run_id == run_id).order_by(Alert.id)).first()
    session.execute(update(Alert).where(Alert.id == alert.id).values(status=SENDING, deadline_at=utcnow()))
    session.commit()

    dispatcher = _dispatcher(app)
    dispatcher.accepted.note(alert.id, "SM" + "a" * 32, answer)
    dispatcher.record_accepted()

    session.expire_all()
    alert = session.get(Alert, alert.id)
    assert (alert.status, alert.provider_status, alert.provider_sid) == (status, answer, "SM" + "a" * 32)
    assert alert.sent_at is not None and alert.deadline_at is None
    assert (alert.delivered_at is not None, alert.finished_at is not None) == (final, final)


def test_a_send_answer_never_moves_an_alert_back_from_what_a_callback_said(app, client, login, staffed, session):
    school, admin, _ = staffed
    run_id = _drill(client, login, school, admin)
    alert = session.scalars(select(Alert).where(Alert.run_id == run_id).order_by(Alert.id)).first()
    session.execute(update(Alert).where(Alert.id == alert.id).values(status="delivered", provider_status="delivered"))
    session.commit()

    dispatcher = _dispatcher(app)
    dispatcher.accepted.note(alert.id, "SM" + "b" * 32, "queued")
    dispatcher.record_accepted()

    session.expire_all()
    assert session.get(Alert, alert.id).status == "delivered"


def test_a_text_whose_callback_was_lost_is_asked_about_and_moved_on(app, client, login, staffed, fake_twilio,
                                                                    session):
    school, admin, _ = staffed
    run_id = _drill(client, login, school, admin)
    session.commit()
    dispatcher = _dispatcher(app)
    dispatcher.drain()  # the fake sends no callbacks: every text stays `sent`
    sms = session.scalars(select(Alert).where(Alert.run_id == run_id, Alert.channel == "sms")).first()
    assert sms.status == SENT
    fake_twilio.set_message_status(sms.provider_sid, "delivered")
    session.execute(update(Alert).where(Alert.id == sms.id)
                    .values(sent_at=utcnow() - timedelta(seconds=dispatcher.settings.poll_after + 1)))
    session.commit()

    assert dispatcher.poll_stuck() == 1

    session.expire_all()
    assert session.get(Alert, sms.id).status == "delivered"


def test_committed_alerts_wake_a_waiting_dispatcher_at_once(app, client, login, staffed, fake_twilio, session):
    """A run's first texts leave when the run starts, not when the idle dispatcher next looks (here 60 s)."""
    school, admin, teachers = staffed
    dispatcher = _dispatcher(app)
    thread = threading.Thread(target=dispatcher.run_forever, kwargs={"idle_sleep": 60.0}, daemon=True)
    thread.start()
    try:
        fake_twilio.wait_for(lambda: dispatcher.identity is not None, timeout=10)  # registered, then idle
        run_id = _drill(client, login, school, admin)
        fake_twilio.wait_for(lambda: len(fake_twilio.messages) >= len(teachers) + 1, timeout=20)
    finally:
        dispatcher.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert {m["to"] for m in fake_twilio.messages} >= {t.mobile for t in teachers}
    assert session.scalar(select(Alert.id).where(Alert.run_id == run_id, Alert.channel == "sms",
                                                 Alert.status == QUEUED)) is None


def test_only_a_commit_of_queued_alerts_wakes_the_dispatcher(app, client, login, staffed, session):
    school, admin, _ = staffed
    dispatcher, headers = _dispatcher(app), login(admin)
    client.get("/api/v1/runs", headers=headers)  # a commit that queued nothing
    assert not dispatcher.due.is_set()
    _drill(client, login, school, admin)
    assert dispatcher.due.is_set()
    dispatcher.due.clear()
    session.execute(select(Alert.id).limit(1))
    session.info[QUEUED_IN_SESSION] = True  # as queue() leaves it; then the transaction rolls back
    session.rollback()
    session.commit()
    assert not dispatcher.due.is_set()


def test_finished_sends_are_handed_over_once_each_and_each_loop_has_its_own():
    from concurrent.futures import Future

    from emergency.alerts.dispatcher import Finished

    mine, theirs = Finished(), Finished()
    assert mine is not theirs
    futures = [Future() for _ in range(3)]
    for future in futures:
        mine.add(future)
    assert mine.take(timeout=1) == set(futures)
    assert mine.take(timeout=0.01) == set() and theirs.take(timeout=0.01) == set()
