"""Escalation: no acknowledgement -> a call -> the school admins are told; scheduled in the database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from emergency.alerts.acks import acknowledge
from emergency.alerts.escalation import run_due_escalations
from emergency.alerts.models import Alert, OptOut
from emergency.app import create_app
from emergency.runs.service import all_clear
from emergency.timeutil import utcnow
from tests.alerts.helpers import SCHOOL, alerts, as_principal, events, fake_twilio_settings, start


@pytest.fixture
def app_overrides(fake):
    """The test app sends through the fake Twilio."""
    return fake_twilio_settings(fake)


@pytest.fixture
def config(make_config, app_overrides):
    """The settings of the `app` fixture, for a second app (a restart)."""
    return make_config(**app_overrides)


def make_overdue(session, run, **where) -> None:
    """Move the clock: every pending escalation of the run (optionally filtered) is due now."""
    query = update(Alert).where(Alert.run_id == run.id, Alert.escalate_at.is_not(None))
    for name, value in where.items():
        query = query.where(getattr(Alert, name) == value)
    session.execute(query.values(escalate_at=utcnow() - timedelta(seconds=1)))
    session.commit()


def test_silence_after_the_alert_queues_one_escalation_call(app, session, school, principal, teacher, pushes):
    run = start(app, principal, school)
    [primary] = [a for a in alerts(session, run, person_id=teacher.id) if a.escalate_at]
    assert primary.channel == "push" and primary.escalate_after_seconds == 120
    make_overdue(session, run, person_id=teacher.id)

    assert run_due_escalations(session) == 1
    assert run_due_escalations(session) == 0

    [call] = alerts(session, run, person_id=teacher.id, occasion="escalation")
    assert call.channel == "voice" and call.requires_ack and call.status == "queued"
    assert call.to_number == teacher.mobile
    assert timedelta(seconds=110) < call.escalate_at - utcnow() <= timedelta(seconds=120)
    assert call.body.startswith("DRILL - THIS IS A DRILL. LOCKDOWN at") and "Reply OK" not in call.body
    [event] = events(session, run, "alert.escalated")
    assert event.payload["recipient"] == "Tess Teacher" and event.payload["to_channel"] == "voice"
    assert "alert.escalated" in pushes.names()


def test_the_escalation_call_speaks_the_text_without_its_link_even_if_the_address_changed(
        app, session, school, principal, teacher):
    run = start(app, principal, school)
    [primary] = [a for a in alerts(session, run, person_id=teacher.id) if a.escalate_at]
    # Sent before the district moved the service to another address: the link is not today's.
    session.execute(update(Alert).where(Alert.id == primary.id).values(
        body=f"DRILL - THIS IS A DRILL. LOCKDOWN at Port Chester. Reply OK to confirm. "
             f"https://old-address.example.org/r/{run.id}"))
    make_overdue(session, run, person_id=teacher.id)

    assert run_due_escalations(session) == 1

    [call] = alerts(session, run, person_id=teacher.id, occasion="escalation")
    assert call.body == "DRILL - THIS IS A DRILL. LOCKDOWN at Port Chester."


def test_an_acknowledged_recipient_is_not_escalated(app, session, school, principal, teacher):
    run = start(app, principal, school)
    acknowledge(session, run, person_id=teacher.id, channel="app")
    make_overdue(session, run, person_id=teacher.id)

    assert run_due_escalations(session) == 0
    assert alerts(session, run, occasion="escalation") == []


def test_the_all_clear_cancels_pending_escalations(app, session, school, principal, teacher):
    run = start(app, principal, school)
    make_overdue(session, run, person_id=teacher.id)
    run_due_escalations(session)
    make_overdue(session, run, occasion="escalation")

    all_clear(session, as_principal(principal), run.id)

    assert all(a.escalate_at is None for a in alerts(session, run) if a.escalated_at is None)
    assert [a.status for a in alerts(session, run, occasion="escalation")] == ["cancelled"]
    assert run_due_escalations(session) == 0
    assert alerts(session, run, occasion="unreachable") == []


def test_escalation_survives_a_restart_and_is_not_repeated(app, config, session, fake, school, principal, teacher):
    run = start(app, principal, school)
    app.extensions["dispatcher"].drain()
    assert fake.calls_to(teacher.mobile) == []
    make_overdue(session, run, person_id=teacher.id)

    restarted = create_app(config)  # a new process: nothing but the database carries over
    try:
        dispatcher = restarted.extensions["dispatcher"]
        dispatcher.run_once()
        dispatcher.run_once()
        dispatcher.drain()
        app.extensions["dispatcher"].run_once()  # the old instance, still running, finds nothing to do
        app.extensions["dispatcher"].drain()
    finally:
        restarted.extensions["db"]["engine"].dispose()

    assert len(alerts(session, run, occasion="escalation")) == 1
    [call] = fake.calls_to(teacher.mobile)
    [escalation] = alerts(session, run, occasion="escalation")
    assert call["url"] == f"http://testserver/webhooks/twilio/voice/{escalation.id}"
    assert escalation.status == "sent"


def test_racing_dispatchers_escalate_once(app, session, school, principal, teacher):
    run = start(app, principal, school)
    make_overdue(session, run, person_id=teacher.id)
    sessions = app.extensions["db"]["sessionmaker"]
    results: list[int] = []
    barrier = threading.Barrier(4)

    def dispatcher_pass():
        barrier.wait()
        with sessions() as own:
            results.append(run_due_escalations(own))

    threads = [threading.Thread(target=dispatcher_pass) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results) == [0, 0, 0, 1]
    assert len(alerts(session, run, occasion="escalation")) == 1


def test_unanswered_call_tells_the_school_admins_without_numbers(app, session, make_person, school, principal,
                                                                 teacher):
    opted_out_admin = make_person("school_admin", [school], name="Ada Admin")
    make_person("district_admin", [], name="Dana District")
    make_person("school_admin", [school], name="No Phone", mobile=None)
    session.add(OptOut(number=opted_out_admin.mobile, keyword="STOP"))
    session.commit()
    run = start(app, principal, school)
    make_overdue(session, run, person_id=teacher.id)
    run_due_escalations(session)
    assert alerts(session, run, occasion="unreachable") == []

    make_overdue(session, run, occasion="escalation")
    assert run_due_escalations(session) == 1

    [event] = events(session, run, "recipient.unreachable")
    assert event.payload == {"name": "Tess Teacher", "role": "teacher", "kind": "person",
                             "channels": ["push", "sms", "voice"], "alert_id": event.payload["alert_id"]}
    notices = alerts(session, run, occasion="unreachable")
    assert {(a.recipient_name, a.channel) for a in notices} == {("Pat Principal", "sms"), ("Ada Admin", "voice")}
    body = notices[0].body
    assert body == ("DRILL - THIS IS A DRILL. Not confirmed after SMS and call: Tess Teacher (teacher). "
                    f"{SCHOOL}.")
    assert all(a.body == body and not a.requires_ack and a.escalate_at is None for a in notices)
    assert teacher.mobile not in body and teacher.mobile[-4:] not in body
    assert run_due_escalations(session) == 0


def test_real_unreachable_notice_has_no_banner(app, session, school, principal, teacher):
    run = start(app, teacher, school, mode="real")
    make_overdue(session, run, person_id=teacher.id)
    run_due_escalations(session)
    make_overdue(session, run, occasion="escalation")
    run_due_escalations(session)

    [notice] = alerts(session, run, occasion="unreachable")
    assert notice.body == f"Not confirmed after SMS and call: Tess Teacher (teacher). {SCHOOL}."


def test_someone_without_a_mobile_goes_straight_to_the_admins(app, session, make_person, school, principal):
    silent = make_person("teacher", [school], name="Nomo Bile", mobile=None)
    run = start(app, principal, school)
    make_overdue(session, run, person_id=silent.id)

    assert run_due_escalations(session) == 1

    assert alerts(session, run, occasion="escalation") == []
    [notice] = alerts(session, run, occasion="unreachable")
    assert notice.recipient_name == "Pat Principal"
    assert "Not confirmed after the app alert: Nomo Bile (teacher)." in notice.body
