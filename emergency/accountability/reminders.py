"""Reminders: one SMS nudge to the teachers of rooms that have not reported, then the list to the admins.

The schedule lives in `accountability_schedules`, created lazily for every active run whose
playbook requires accountability, so reminders survive restarts. Each reminder is claimed with a
single UPDATE ... WHERE sent_at IS NULL, in the same transaction as its alerts: two dispatchers
never send it twice, and a crash before commit sends nothing and leaves it due.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from emergency.accountability.models import AccountabilitySchedule
from emergency.accountability.rooms import unreported_rooms
from emergency.accountability.texts import queue_texts, school_admins
from emergency.db import backend, upsert
from emergency.directory.models import Person
from emergency.playbooks.templates import banner
from emergency.runs import timeline
from emergency.runs.models import ACTIVE, Run
from emergency.timeutil import utcnow

log = logging.getLogger(__name__)

REMINDER_PRIORITY = 20
DEADLINE_PRIORITY = 5
MAX_BODY = 320  # two SMS segments at most


def run_due_reminders(session: Session) -> int:
    """Send the reminders and deadline lists that are due; returns how many SMS were queued.

    A dispatcher job in which each reminder is a transaction of its own (see the module docstring).
    """
    _schedule_new_runs(session)
    queued = 0
    for due, sent, send in ((AccountabilitySchedule.reminder_due_at, AccountabilitySchedule.reminder_sent_at,
                             _remind_teachers),
                            (AccountabilitySchedule.deadline_due_at, AccountabilitySchedule.deadline_sent_at,
                             _tell_admins)):
        run_ids = _due(session, due, sent)
        session.commit()  # new schedules, and the end of the read: on SQLite every transaction holds the write lock
        for run_id in run_ids:
            run = _claim(session, run_id, sent)
            if run is not None:
                queued += send(session, run)
            session.commit()  # this reminder: its claim with its alerts
    return queued


def _schedule_new_runs(session: Session) -> None:
    """Create the schedule of active runs that need one (they cannot be hooked at start)."""
    runs = session.scalars(select(Run).where(Run.state == ACTIVE, ~Run.id.in_(select(AccountabilitySchedule.run_id))))
    rows = []
    for run in runs:
        settings = (run.playbook or {}).get("accountability") or {}
        if not settings.get("required"):
            continue
        rows.append({"run_id": run.id, "created_at": utcnow(),
                     "reminder_due_at": run.started_at + timedelta(minutes=int(settings.get("reminder_minutes", 5))),
                     "deadline_due_at": run.started_at + timedelta(minutes=int(settings.get("deadline_minutes", 10)))})
    if not rows:
        return
    statement = upsert(backend(session), AccountabilitySchedule)
    session.execute(statement.values(rows).on_conflict_do_nothing())


def _due(session: Session, due_column, sent_column) -> list[int]:
    """Runs whose entry is due and unsent, and still active (the all-clear stops reminders)."""
    ids = list(session.scalars(select(AccountabilitySchedule.run_id).join(Run, Run.id == AccountabilitySchedule.run_id)
                               .where(sent_column.is_(None), due_column <= utcnow(), Run.state == ACTIVE)))
    return ids


def _claim(session: Session, run_id: int, sent_column) -> Run | None:
    """Mark one entry as sent unless another dispatcher did first; the caller sends in the same transaction."""
    # Locking the run row waits for an all-clear in progress (PostgreSQL), which then stops the reminder.
    run = session.scalar(select(Run).where(Run.id == run_id, Run.state == ACTIVE).with_for_update()
                         .execution_options(populate_existing=True))
    if run is None:
        return None
    claimed = session.execute(update(AccountabilitySchedule)
                              .where(AccountabilitySchedule.run_id == run_id, sent_column.is_(None))
                              .values({sent_column.key: utcnow()}).execution_options(synchronize_session=False))
    return run if claimed.rowcount == 1 else None


def _remind_teachers(session: Session, run: Run) -> int:
    rooms = unreported_rooms(session, run)
    if not rooms:
        return 0
    by_room = {room.id: room for room in rooms}
    teachers = session.scalars(select(Person).where(Person.active.is_(True), Person.home_room_id.in_(by_room))
                               .order_by(Person.id))
    queued = 0
    nudged = 0
    event = timeline.record(session, run, "accountability.reminder", {"rooms": len(rooms)})
    for teacher in teachers:
        room = by_room[teacher.home_room_id]
        body = (f"{banner(run.mode)}Reminder: room {room.number} has not checked in. Reply IN {room.number} "
                f"P<present> M<missing> I<injured>, or use the app. {run.school.name[:60]}")
        queued += queue_texts(session, run, event.seq, "reminder", [teacher], body, priority=REMINDER_PRIORITY)
        nudged += 1
    log.info("run %s: reminded %s teachers of %s unreported rooms", run.id, nudged, len(rooms))
    return queued


def unaccounted_body(run: Run, numbers: list[str]) -> str:
    """The admins' deadline SMS, listing room numbers and cutting the list to fit two segments."""
    head = f"{banner(run.mode)}Not yet accounted for at {run.school.name[:60]} ({len(numbers)} rooms): "
    listed: list[str] = []
    for i, number in enumerate(numbers):
        left = len(numbers) - i - 1  # rooms after this one
        if listed and len(head + ", ".join([*listed, number]) + (f" and {left} more." if left else ".")) > MAX_BODY:
            return head + ", ".join(listed) + f" and {left + 1} more."
        listed.append(number)
    return head + ", ".join(listed) + "."


def _tell_admins(session: Session, run: Run) -> int:
    rooms = unreported_rooms(session, run)
    if not rooms:
        return 0
    numbers = [room.number for room in rooms]
    event = timeline.record(session, run, "accountability.deadline", {"unaccounted": len(rooms), "rooms": numbers})
    queued = queue_texts(session, run, event.seq, "deadline", school_admins(session, run),
                         unaccounted_body(run, numbers), priority=DEADLINE_PRIORITY)
    log.info("run %s: deadline passed with %s rooms unaccounted for", run.id, len(rooms))
    return queued
