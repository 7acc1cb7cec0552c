"""Which rooms must report, and who may report for a school."""

from __future__ import annotations

import logging

from sqlalchemy import (
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from emergency.accountability.models import (
    RoomStatus,
)
from emergency.directory.models import Person, Room, person_schools, room_label
from emergency.directory.principal import Principal
from emergency.directory.roles import DISTRICT_ADMIN
from emergency.errors import Forbidden, ValidationFailed
from emergency.runs.models import Run
from emergency.runs.service import get_run, visible_run

log = logging.getLogger(__name__)


log = logging.getLogger(__name__)


EXPECTED_ROOM_RULE = ("rooms of kind 'classroom' with capacity > 0, plus any room that is an active "
                      "person's home room")


# Who reports: a Person (SMS) or the calling Principal (app); both have id, name, role and home_room_id.
Reporter = Person | Principal


def is_staff_of(session: Session, person: Person, school_id: int) -> bool:
    """Whether an active person works at the school (district admins work at every school)."""
    if not person.active:
        return False
    if person.role == DISTRICT_ADMIN:
        return True
    return session.scalar(select(person_schools.c.person_id).where(
        person_schools.c.person_id == person.id, person_schools.c.school_id == school_id)) is not None


def _refuse_partners(principal: Principal) -> None:
    # The run's scope check is the staff check: a person's scope is the schools they work at.
    if principal.is_partner:
        raise Forbidden("Partners have read-only access: only school staff can report.")


def reporting_run(session: Session, principal: Principal, run_id: int) -> Run:
    _refuse_partners(principal)
    return get_run(session, principal, run_id)


def reporting_run_and_room(session: Session, principal: Principal, run_id: int,
                           room_id: int | None) -> tuple[Run, Room | None]:
    """reporting_run, and the room `room_id` (None if there is none, or no id) read in the same round trip.

    Whether the room is one the caller may report for is the caller's check (a room of the run's school).
    """
    _refuse_partners(principal)
    found = session.execute(_RUN_AND_ROOM, {"run_id": run_id, "room_id": room_id}).one_or_none()
    return visible_run(principal, run_id, found[0] if found else None), found[1] if found else None


# Built once. The room is a left join: the run decides whether the caller gets a 404.
_RUN_AND_ROOM = (select(Run, Room).select_from(Run).outerjoin(Room, Room.id == bindparam("room_id"))
                 .where(Run.id == bindparam("run_id")))


def actor_of(person: Reporter) -> dict:
    """How a person is recorded on a timeline event (same shape as Principal.actor())."""
    return {"kind": "person", "id": person.id, "name": person.name, "role": person.role}


def _is_expected():
    """SQL condition on a Room of the school: it must report (see module docstring)."""
    # Uncorrelated on purpose: the database evaluates the home rooms once, not once per room.
    home_rooms = select(Person.home_room_id).where(Person.active.is_(True), Person.home_room_id.is_not(None))
    return or_(and_(Room.kind == "classroom", Room.capacity > 0), Room.id.in_(home_rooms))


def must_report(school_id: int):
    """SQL condition on Room: the rooms of the school that must report."""
    return and_(Room.school_id == school_id, _is_expected())


def room_ref(room) -> dict:
    """A Room, or a row with its id, number and name, as the API shows it."""
    return {"id": room.id, "number": room.number, "name": room.name, "label": room_label(room.number, room.name)}


def resolve_location(session: Session, run: Run, location: str | None) -> str | None:
    """The canonical name of a reported location: a room of the school or a playbook assembly point."""
    if location is None or not location.strip():
        return None
    wanted = " ".join(location.split()).casefold()
    settings = run.playbook.get("accountability", {})
    points = list(settings.get("assembly_points", []))
    for point in points:
        if point.casefold() == wanted:
            return point
    if settings.get("rooms", True):
        room = session.scalar(select(Room).where(Room.school_id == run.school_id, or_(
            func.lower(Room.number) == wanted, func.lower(Room.name) == wanted)).order_by(Room.number).limit(1))
        if room is not None:
            return room.label
    allowed = (["a room of the school"] if settings.get("rooms", True) else []) + points
    raise ValidationFailed(f"The location must be {' or '.join(allowed) if allowed else 'left out'}.",
                           errors={"location": ["allowed: " + (", ".join(allowed) or "none")]})


def expected_room_count(session: Session, school_id: int) -> int:
    """How many rooms of the school must report (an indexed count: it does not grow with the reports)."""
    return session.scalar(EXPECTED_COUNT, {"school_id": school_id}) or 0


def room_is_expected(session: Session, room: Room) -> bool:
    if room.kind == "classroom" and (room.capacity or 0) > 0:
        return True
    return bool(session.scalar(select(exists().where(Person.home_room_id == room.id, Person.active.is_(True)))))


EXPECTED_COUNT = select(func.count()).select_from(Room).where(must_report(bindparam("school_id")))


def unreported_rooms(session: Session, run: Run) -> list[Room]:
    """Expected rooms of the run that have not reported yet, by number."""
    return list(session.scalars(select(Room).where(must_report(run.school_id), ~exists(
        select(RoomStatus.room_id).where(RoomStatus.run_id == run.id, RoomStatus.room_id == Room.id)))
        .order_by(Room.number)))
