"""Staff status: "I am safe" and "I need help", the latest per person and run."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from emergency.accountability.models import (
    NEED_HELP,
    SAFE,
    StaffStatus,
)
from emergency.accountability.rooms import actor_of, reporting_run, resolve_location, room_ref
from emergency.accountability.texts import alert_help
from emergency.db import lock_rows
from emergency.directory.models import Person
from emergency.directory.principal import Principal
from emergency.errors import ValidationFailed
from emergency.runs import timeline
from emergency.runs.models import Run
from emergency.runs.partners import staff_board_for_partner
from emergency.runs.service import get_run
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)


# A second "I need help" from the same person alerts again only after this long.
HELP_REPEAT_AFTER = timedelta(minutes=2)


def _lock_run(session: Session, run: Run) -> None:
    # Statuses of one run are written one at a time.
    lock_rows(session, select(Run.id).where(Run.id == run.id).with_for_update())


def set_staff_status(session: Session, principal: Principal, run_id: int, status: str, *,
                     note: str | None = None, location: str | None = None) -> StaffStatus:
    """A staff member says "I am safe" or "I need help" from the app."""
    run = reporting_run(session, principal, run_id)
    person = session.get(Person, principal.id)
    return record_staff_status(session, run, person, status, channel="app", note=note, location=location)


def record_staff_status(session: Session, run: Run, person: Person, status: str, *, channel: str,
                        note: str | None = None, location: str | None = None) -> StaffStatus:
    """Keep the latest status of staff of the run's school (the caller checked); "need help" alerts the admins."""
    if status not in (SAFE, NEED_HELP):
        raise ValidationFailed(f"Unknown status {status!r}.", errors={"status": ["safe or need_help"]})
    place = resolve_location(session, run, location)
    _lock_run(session, run)
    now = utcnow()
    row = session.get(StaffStatus, (run.id, person.id))
    alert = status == NEED_HELP and (row is None or row.status != NEED_HELP
                                     or row.updated_at <= now - HELP_REPEAT_AFTER)
    if row is None:
        row = StaffStatus(run_id=run.id, person_id=person.id, person=person)
        session.add(row)
    row.status, row.channel, row.note, row.location, row.updated_at = status, channel, note, place, now
    row.room_id = person.home_room_id
    session.flush()
    room = person.home_room
    payload = {"person": {"id": person.id, "name": person.name, "role": person.role}, "status": status,
               "room": room_ref(room) if room else None, "location": place, "channel": channel,
               "has_note": bool(note)}
    event = timeline.record(session, run, "staff.status", payload, actor=actor_of(person))
    if alert:
        alert_help(session, run, person, event.seq, room_label=place or (room.label if room else None),
                   exclude_person_id=person.id)
    return row


def staff_views(session: Session, run: Run, *, notes: bool = False) -> list[dict]:
    """The latest status of each staff member who said something in the run."""
    rows = session.scalars(select(StaffStatus).where(StaffStatus.run_id == run.id)
                           .order_by(StaffStatus.status.desc(), StaffStatus.updated_at))
    return [staff_view(row, notes=notes) for row in rows]


def staff_view(row: StaffStatus, *, notes: bool) -> dict:
    """One staff member's latest status; the free-text note only when `notes`."""
    view = {"run_id": row.run_id, "person": {"id": row.person.id, "name": row.person.name, "role": row.person.role},
            "status": row.status, "channel": row.channel, "location": row.location,
            "room": room_ref(row.room) if row.room else None, "updated_at": iso(row.updated_at)}
    if notes:
        view["note"] = row.note
    return view


def staff_board(session: Session, principal: Principal, run_id: int) -> dict:
    """Who said they are safe and who needs help; notes for staff, not partners."""
    run = get_run(session, principal, run_id)
    staff = staff_views(session, run, notes=not principal.is_partner)
    board = {"run_id": run.id, "safe": sum(s["status"] == SAFE for s in staff),
             "need_help": sum(s["status"] == NEED_HELP for s in staff), "staff": staff}
    return staff_board_for_partner(board) if principal.is_partner else board
