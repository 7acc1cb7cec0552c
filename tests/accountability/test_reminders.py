"""Reminders: one nudge to teachers of unreported rooms, the list to admins at the deadline, never twice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from emergency.accountability.models import AccountabilitySchedule
from emergency.accountability.reminders import MAX_BODY, run_due_reminders, unaccounted_body
from emergency.alerts.models import Alert
from emergency.runs.models import Run, RunEvent
from tests.accountability.test_checkins import GOOD, world_fixture  # noqa: F401


def started_ago(session, run_id: int, minutes: float) -> Run:
    run = session.get(Run, run_id)
    run.started_at = run.started_at - timedelta(minutes=minutes)
    session.commit()
    return run


def sent(session, run_id: int, occasion: str) -> list[Alert]:
    return session.scalars(select(Alert).where(Alert.run_id == run_id, Alert.occasion == occasion)
                           .order_by(Alert.recipient_name)).all()


def test_nothing_is_sent_before_the_reminder_is_due(world, session):
    run_id = world.start()

    assert run_due_reminders(session) == 0
    schedule = session.get(AccountabilitySchedule, run_id)
    run = session.get(Run, run_id)
    assert schedule.reminder_due_at == run.started_at + timedelta(minutes=5)
    assert schedule.deadline_due_at == run.started_at + timedelta(minutes=10)


def test_teachers_of_unreported_rooms_get_one_nudge(world, session):
    run_id = world.start()
    started_ago(session, run_id, 6)
    world.check_in(run_id, **GOOD)  # 204 reported; 205 and 300 have not

    first = run_due_reminders(session)
    second = run_due_reminders(session)

    nudges = sent(session, run_id, "reminder")
    assert first == 2 and second == 0
    assert [(a.recipient_name, a.channel) for a in nudges] == [("Cory Counsellor", "sms"), ("Theo Teacher", "sms")]
    theo = nudges[1]
    assert theo.body.startswith("DRILL - THIS IS A DRILL. Reminder: room 205 has not checked in. Reply IN 205")
    assert sent(session, run_id, "deadline") == []


def test_at_the_deadline_admins_get_the_rooms_still_unaccounted_for(world, session):
    run_id = world.start()
    started_ago(session, run_id, 11)
    world.check_in(run_id, who=world.teacher2, **GOOD)

    run_due_reminders(session)
    run_due_reminders(session)

    deadline = sent(session, run_id, "deadline")
    assert [(a.recipient_name, a.body) for a in deadline] == [(
        "Pat Principal",
        "DRILL - THIS IS A DRILL. Not yet accounted for at Port Chester Middle School (2 rooms): 204, 300.")]
    assert len(sent(session, run_id, "reminder")) == 2
    event = session.scalar(select(RunEvent).where(RunEvent.run_id == run_id,
                                                  RunEvent.type == "accountability.deadline"))
    assert event.payload == {"unaccounted": 2, "rooms": ["204", "300"]}


def test_no_deadline_message_when_every_room_reported(world, session):
    run_id = world.start()
    for who in (world.teacher, world.teacher2, world.counsellor):
        world.check_in(run_id, who=who, **GOOD)
    started_ago(session, run_id, 11)

    assert run_due_reminders(session) == 0
    schedule = session.get(AccountabilitySchedule, run_id)
    assert schedule.reminder_sent_at is not None and schedule.deadline_sent_at is not None


def test_all_clear_stops_the_reminders(world, session):
    run_id = world.start()
    run_due_reminders(session)  # the schedule exists
    world.all_clear(run_id)
    started_ago(session, run_id, 11)

    assert run_due_reminders(session) == 0
    assert sent(session, run_id, "reminder") == [] and sent(session, run_id, "deadline") == []


def test_runs_whose_playbook_does_not_require_accountability_get_no_schedule(world, session):
    run_id = world.start()
    run = session.get(Run, run_id)
    run.playbook = {**run.playbook, "accountability": {**run.playbook["accountability"], "required": False}}
    session.commit()
    started_ago(session, run_id, 11)

    assert run_due_reminders(session) == 0
    assert session.get(AccountabilitySchedule, run_id) is None


def test_the_dispatcher_runs_reminders_on_each_pass_and_sends_them(world, session, app):
    run_id = world.start()
    started_ago(session, run_id, 6)

    app.extensions["dispatcher"].drain()

    nudges = sent(session, run_id, "reminder")
    session.expire_all()
    assert len(nudges) == 3
    assert {session.get(Alert, a.id).status for a in nudges} <= {"sent", "delivered"}


def test_a_long_list_is_cut_to_two_segments(world, session):
    run = session.get(Run, world.start())
    numbers = [f"{n:03d}" for n in range(1, 120)]

    body = unaccounted_body(run, numbers)

    assert len(body) <= MAX_BODY
    assert "(119 rooms): 001, 002" in body
    shown = body.split(": ", 2)[-1].split(" and ")[0].split(", ")
    assert body.endswith(f" and {119 - len(shown)} more.")
