"""Classroom check-ins, the live roll-up, staff status ("I am safe" / "I need help") and the figures.

Expected rooms: rooms of the run's school of kind `classroom` with a capacity above 0, plus any
room that is the home room of an active person. Rooms outside that set (a gym, an office) may
still report; they count in the totals but not in `percent_reported`.

The roll-up reads `room_statuses` (one row per reported room, counts copied from its latest
check-in), never the check-in history, so it costs the same for the 60th room as for the first.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emergency.accountability.cache import RollupCache
from emergency.accountability.models import (
    ALL_ACCOUNTED,
    COUNT_FIELDS,
    MAX_COUNT,
    NEED_HELP,
    SAFE,
    STUDENTS_MISSING,
    Checkin,
    RoomStatus,
    RunTally,
    StaffStatus,
)
from emergency.accountability.schemas import RollupSchema
from emergency.alerts.ack_tally import unacknowledged
from emergency.alerts.models import QUEUED
from emergency.alerts.outbox import Outgoing, queue
from emergency.db import upsert
from emergency.directory.models import Partner, Person, Room, person_schools, room_label
from emergency.directory.principal import Principal
from emergency.directory.roles import DISTRICT_ADMIN, SCHOOL_ADMIN
from emergency.directory.service import partners_of, people_of
from emergency.errors import Conflict, Forbidden, ValidationFailed
from emergency.playbooks.templates import help_text
from emergency.realtime.push import ADMINS
from emergency.runs import timeline
from emergency.runs.models import ACTIVE, Run, RunEvent
from emergency.runs.service import get_run
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)

EXPECTED_ROOM_RULE = ("rooms of kind 'classroom' with capacity > 0, plus any room that is an active "
                      "person's home room")
HELP_PRIORITY = 0
# A second "I need help" from the same person alerts again only after this long.
HELP_REPEAT_AFTER = timedelta(minutes=2)
# Who reports: a Person (SMS) or the calling Principal (app); both have id, name, role and home_room_id.
Reporter = Person | Principal


@dataclass
class CheckinRequest:
    """One room's report as the API or an SMS gives it."""

    status: str
    room_id: int | None = None
    present: int = 0
    absent: int = 0
    missing: int = 0
    injured: int = 0
    extra: int = 0
    location: str | None = None
    missing_students: list[str] | None = None
    injured_students: list[str] | None = None
    note: str | None = None
    room_empty: bool = False


# -- who may report ------------------------------------------------------------------------------
def is_staff_of(session: Session, person: Person, school_id: int) -> bool:
    """Whether an active person works at the school (district admins work at every school)."""
    if not person.active:
        return False
    if person.role == DISTRICT_ADMIN:
        return True
    return session.scalar(select(person_schools.c.person_id).where(
        person_schools.c.person_id == person.id, person_schools.c.school_id == school_id)) is not None


def _reporting_run(session: Session, principal: Principal, run_id: int) -> Run:
    if principal.is_partner:
        raise Forbidden("Partners have read-only access: only school staff can report.")
    # get_run's scope check is the staff check: a person's scope is the schools they work at.
    return get_run(session, principal, run_id)


def actor_of(person: Reporter) -> dict:
    """How a person is recorded on a timeline event (same shape as Principal.actor())."""
    return {"kind": "person", "id": person.id, "name": person.name, "role": person.role}


# -- expected rooms ------------------------------------------------------------------------------
def _is_expected():
    """SQL condition on a Room of the school: it must report (see module docstring)."""
    # Uncorrelated on purpose: the database evaluates the home rooms once, not once per room.
    home_rooms = select(Person.home_room_id).where(Person.active.is_(True), Person.home_room_id.is_not(None))
    return or_(and_(Room.kind == "classroom", Room.capacity > 0), Room.id.in_(home_rooms))


def _expected(school_id: int):
    """SQL condition on Room: the rooms of the school that must report."""
    return and_(Room.school_id == school_id, _is_expected())


def _room_ref(room) -> dict:
    """A Room, or a row with its id, number and name, as the API shows it."""
    return {"id": room.id, "number": room.number, "name": room.name, "label": room_label(room.number, room.name)}


# -- validation ----------------------------------------------------------------------------------
def _check_counts(request: CheckinRequest) -> None:
    """Refuse a report whose status contradicts its counts, or that names more students than it counts."""
    errors: dict[str, list[str]] = {}
    for name in COUNT_FIELDS:
        value = getattr(request, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
            errors[name] = [f"a whole number from 0 to {MAX_COUNT}"]
    if not errors:
        if request.status == ALL_ACCOUNTED and request.missing > 0:
            errors["status"] = [f"all_accounted means nobody is missing, but missing is {request.missing}; "
                                "send students_missing"]
        if request.status == STUDENTS_MISSING and request.missing == 0:
            errors["status"] = ["students_missing needs a missing count above 0"]
        for names, count in (("missing_students", "missing"), ("injured_students", "injured")):
            given = getattr(request, names) or []
            if len(given) > getattr(request, count):
                errors[names] = [f"{len(given)} names given but {count} is {getattr(request, count)}"]
        nobody = not any(getattr(request, name) for name in ("present", "missing", "injured", "extra"))
        if request.room_empty and not (nobody and request.status == ALL_ACCOUNTED):
            errors["room_empty"] = ["an empty room has no students and the status all_accounted"]
        elif nobody and request.status == ALL_ACCOUNTED and not request.room_empty:
            # An untouched form must not read as "all accounted": 0 present is said on purpose.
            errors["present"] = ["0 students: send room_empty: true if nobody is with you, "
                                 "otherwise count the students you can see"]
    if errors:
        raise ValidationFailed("The report contradicts itself: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in sorted(errors.items())), errors=errors)


def _resolve_room(session: Session, run: Run, room_id: int | None, person: Reporter) -> Room:
    """The room reported for, a room of the run's school; on PostgreSQL, with its lock (see _lock_room) taken."""
    room_id = room_id if room_id is not None else person.home_room_id
    if room_id is None:
        raise ValidationFailed("Say which room you report for: you have no home room.",
                               errors={"room_id": ["required: you have no home room"]})
    if session.get_bind().dialect.name == "postgresql":
        # The lookup takes the lock too: one round trip less on the path every room of the school takes.
        found = session.execute(_ROOM_LOCKED, {"room_id": room_id, "school_id": run.school_id,
                                               "run_id": run.id}).first()
        room = found[0] if found else None
    else:
        room = session.get(Room, room_id)
    if room is None or room.school_id != run.school_id:
        raise ValidationFailed(f"Room {room_id} is not a room of {run.school.name}.",
                               errors={"room_id": [f"not a room of {run.school.name}"]})
    return room


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


def _lock_run(session: Session, run: Run) -> None:
    # Statuses of one run are written one at a time; SQLite already holds its write lock from BEGIN IMMEDIATE.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Run.id).where(Run.id == run.id).with_for_update())


# PostgreSQL: the room of the school, locking its reports in this run until the commit. Reports of
# one room are serialised so its latest row and the supersede link are written in order. Only the
# room, not the run: the run's row is locked later, by the timeline's sequence number, for as short
# a time as possible, since every room of the school queues on it. (The function runs only for the
# row found: a room of another school is neither returned nor locked.)
_ROOM_LOCKED = select(Room, func.pg_advisory_xact_lock(bindparam("run_id"), Room.id)).where(
    Room.id == bindparam("room_id"), Room.school_id == bindparam("school_id"))


# -- check-ins -----------------------------------------------------------------------------------
def check_in(session: Session, principal: Principal, run_id: int, request: CheckinRequest, *,
             idempotency_key: str | None = None) -> tuple[dict, bool]:
    """A staff member reports a room from the app; returns (the check-in as the caller may see it, created)."""
    run = _reporting_run(session, principal, run_id)
    checkin, created = record_checkin(session, run, principal, request, channel="app",
                                      idempotency_key=idempotency_key)
    return checkin_view(checkin, names=may_read_names(principal, run)), created


def _existing_for_key(session: Session, run: Run, person: Reporter, key: str | None) -> Checkin | None:
    if not key:
        return None
    found = session.execute(_CHECKIN_BY_KEY, {"run_id": run.id, "key": key}).one_or_none()
    if found is None:
        return None
    if found.person_id != person.id:
        raise Conflict("That Idempotency-Key was already used by someone else in this run.")
    return session.get(Checkin, found.id)


def record_checkin(session: Session, run: Run, person: Reporter, request: CheckinRequest, *, channel: str,
                   idempotency_key: str | None = None) -> tuple[Checkin, bool]:
    """Record a check-in by staff of the run's school (the caller checked), replace the room's latest status, push.

    The one path for the app and SMS: `person` is the reporter, a Person or the calling Principal.
    """
    existing = _existing_for_key(session, run, person, idempotency_key)
    if existing is not None:
        return existing, False
    room = _resolve_room(session, run, request.room_id, person)
    _check_counts(request)
    location = resolve_location(session, run, request.location)
    try:
        checkin = _record(session, run, person, room, request, location, channel, idempotency_key)
        session.commit()
    except IntegrityError:
        # The same offline check-in replayed twice at once: the other request recorded it.
        session.rollback()
        existing = _existing_for_key(session, run, person, idempotency_key)
        if existing is None:
            raise
        return existing, False
    return checkin, True


def _record(session: Session, run: Run, person: Reporter, room: Room, request: CheckinRequest,
            location: str | None, channel: str, idempotency_key: str | None) -> Checkin:
    # A whole school reports at once, so this path runs plain statements built once (below) rather
    # than ORM units of work: on one web process, Python time is what limits the check-in rate.
    now = utcnow()
    postgres = session.get_bind().dialect.name == "postgresql"
    counts = {name: getattr(request, name) for name in COUNT_FIELDS}
    # Not added to the session: it is inserted by a plain statement and returned to the caller as it was sent.
    checkin = Checkin(run_id=run.id, room_id=room.id, room=room, person_id=person.id, reporter_name=person.name,
                      channel=channel, status=request.status, location=location,
                      missing_students=request.missing_students or None,
                      injured_students=request.injured_students or None, note=request.note,
                      late=run.state != ACTIVE, idempotency_key=idempotency_key, created_at=now,
                      tallied_at=None if postgres else now, **counts)
    room_key = {"run_id": run.id, "room_id": room.id, "status": checkin.status, "reported_at": now, **counts}
    if postgres:
        # Under the room's lock (_resolve_room), one round trip: insert the report, read the room's
        # previous one, link it and replace it, count the expected rooms (the summary shows it).
        stored = session.execute(_store_statement(), {
            **{f"new_{name}": getattr(checkin, name) for name in _CHECKIN_INSERTED},
            **{f"status_{name}": value for name, value in room_key.items()},
            "this_run": run.id, "this_room": room.id, "school_id": run.school_id}).one()
        checkin.id, expected = stored.id, stored.expected
        latest = stored if stored.checkin_id is not None else None
    else:
        checkin.id = session.execute(_INSERT_CHECKIN, {name: getattr(checkin, name) for name in _CHECKIN_INSERTED}
                                     ).scalar_one()
        latest = session.execute(_ROOM_STATUS, {"this_run": run.id, "this_room": room.id}).one_or_none()
        room_key["checkin_id"] = checkin.id
        if latest is None:
            session.execute(_INSERT_ROOM_STATUS, {**room_key, "first_reported_at": now})
        else:
            session.execute(_SUPERSEDE, {"old_id": latest.checkin_id, "new_id": checkin.id})
            session.execute(_UPDATE_ROOM_STATUS, {**room_key, "this_run": run.id, "this_room": room.id})
        expected = expected_room_count(session, run.school_id)
    change = _change(session, checkin, room, latest)
    event = _checkin_event(run, checkin, room, latest.checkin_id if latest else None, actor_of(person))
    urgent = checkin.status == NEED_HELP and (latest is None or latest.status != NEED_HELP)
    if not postgres:
        # SQLite writes one transaction at a time anyway: everything goes in this one.
        tally = _move_tally(session, run, change, first_expected_at=now if change["reported"] else None)
        timeline.append(session, run, event)
    else:
        if not urgent:
            # The report is stored once this commits. The tally and the timeline entry follow in one
            # statement of their own, because they lock rows every room of the school queues on: held
            # across round trips, those locks would make the school queue behind one slow thread.
            # An urgent report keeps it all in one transaction with its alert (below).
            session.commit()
        tally = _apply(session, run, checkin.id, change, event, autocommit=not urgent,
                       first_expected_at=now if change["reported"] else None)
    _publish(session, run, event, tally, expected, room, checkin.status)
    if urgent:
        alert_help(session, run, person, event.seq, room_label=room.label, exclude_person_id=person.id)
    log.info("check-in %s recorded: run %s room %s (%s, %s)", checkin.id, run.id, room.id, channel,
             checkin.status)
    return checkin


def _change(session: Session, checkin: Checkin, room: Room, previous) -> dict:
    """What a check-in adds to the run's tally, given the room's previous latest report (None: first)."""
    if previous is None:
        change = {name: getattr(checkin, name) for name in COUNT_FIELDS}
        change.update(reported_rooms=1, reported=int(_room_is_expected(session, room)))
    else:
        change = {name: getattr(checkin, name) - getattr(previous, name) for name in COUNT_FIELDS}
        change.update(reported_rooms=0, reported=0)
    change["need_help"] = (checkin.status == NEED_HELP) - (previous is not None and previous.status == NEED_HELP)
    return change


def _checkin_event(run: Run, checkin: Checkin, room: Room, supersedes: int | None, actor: dict) -> RunEvent:
    """The unsaved `checkin.recorded` timeline entry of a check-in."""
    # No names and no note in events: they are stored for ever and pushed to every screen.
    payload = {"checkin_id": checkin.id, "room": _room_ref(room), "status": checkin.status,
               **{name: getattr(checkin, name) for name in COUNT_FIELDS}, "location": checkin.location,
               "late": checkin.late, "channel": checkin.channel, "reporter": checkin.reporter_name,
               "supersedes": supersedes, "has_note": bool(checkin.note)}
    return RunEvent(run_id=run.id, type="checkin.recorded", actor=actor, payload=payload, created_at=utcnow())


def _publish(session: Session, run: Run, event: RunEvent | None, tally, expected: int, room: Room,
             status: str) -> None:
    """Queue the live pushes of a check-in: its details, then the run's new numbers.

    The details go to those who act on them (the school's admins, partners in a real run) and to the
    reporter's own phone; every phone of the school gets the numbers, coalesced to a few a second.
    """
    if event is None or event.seq is None:
        return  # applied meanwhile by apply_untallied, which pushed it
    reporter = event.actor.get("id") if event.actor.get("kind") == "person" else None
    timeline.publish(session, run, event, audience=ADMINS, person_ids=(reporter,) if reporter else ())
    timeline.push_only(session, run, "accountability.updated",
                       {**_counts_view(tally, expected), "room": {**_room_ref(room), "status": status}},
                       coalesce=True)


def _apply(session: Session, run: Run, checkin_id: int, change: dict, event: RunEvent, *, autocommit: bool,
           first_expected_at: datetime | None):
    """PostgreSQL: mark the check-in tallied, move the tally and append its timeline entry, in one statement.

    With `autocommit` the statement is its own transaction, so its row locks are held only while the
    database runs it. Nothing happens if the check-in was applied already. Returns the new tally, or
    None; fills in event.id and event.seq.
    """
    if autocommit:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    row = session.execute(_apply_statement(), {
        "mark_id": checkin_id, "mark_at": utcnow(), "tally_run_id": run.id, "tally_first": first_expected_at,
        **{f"tally_{name}": change[name] for name in _TALLY_COUNTERS}, **timeline.append_params(event),
    }).one_or_none()
    if row is None:
        return None
    event.id, event.seq = row.event_id, row.event_seq
    timeline.appended_to(run, event)
    return row


@cache
def _apply_statement():
    """WITH mark (the check-in, if not tallied yet), tally (upsert), seq and appended (timeline): built once."""
    checkins = Checkin.__table__
    mark = (checkins.update().where(checkins.c.id == bindparam("mark_id"), checkins.c.tallied_at.is_(None))
            .values(tallied_at=bindparam("mark_at", type_=checkins.c.tallied_at.type))
            .returning(checkins.c.id).cte("mark"))
    counters = [bindparam(f"tally_{name}", type_=Integer) for name in _TALLY_COUNTERS]
    moved = _adding_to_tally(upsert("postgresql", RunTally.__table__).from_select(
        ["run_id", *_TALLY_COUNTERS, "last_expected_first_at"],
        select(bindparam("tally_run_id", type_=Integer), *counters,
               bindparam("tally_first", type_=RunTally.__table__.c.last_expected_first_at.type)).select_from(mark),
    )).cte("tally")
    appended = timeline.append_cte(guard=mark)
    return select(*moved.c, appended.c.id.label("event_id"), appended.c.seq.label("event_seq")).select_from(
        moved.join(appended, true()))


def apply_untallied(session: Session, *, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Apply check-ins stored but never tallied (their process stopped between the two steps); returns how many.

    A periodic job of the dispatcher. Only PostgreSQL splits the steps; on SQLite this finds nothing.
    """
    ids = list(session.scalars(select(Checkin.id).where(Checkin.tallied_at.is_(None),
                                                        Checkin.created_at < utcnow() - older_than)
                               .order_by(Checkin.id).limit(200)))
    applied = 0
    for checkin_id in ids:
        checkin = session.get(Checkin, checkin_id)
        run, room = session.get(Run, checkin.run_id), checkin.room
        previous = session.scalar(select(Checkin).where(Checkin.superseded_by_id == checkin.id))
        reporter = session.get(Person, checkin.person_id) if checkin.person_id else None
        event = _checkin_event(run, checkin, room, previous.id if previous else None,
                               actor_of(reporter) if reporter else timeline.SYSTEM)
        change = _change(session, checkin, room, previous)
        tally = _apply(session, run, checkin.id, change, event, autocommit=False,
                       first_expected_at=checkin.created_at if change["reported"] else None)
        if tally is not None:
            applied += 1
            _publish(session, run, event, tally, expected_room_count(session, run.school_id), room, checkin.status)
            log.warning("check-in %s of run %s tallied late, by the periodic job", checkin.id, run.id)
        session.commit()
    return applied


# The check-in path's statements, built once: constructing a statement costs more Python than running it.
_CHECKINS, _ROOM_STATUSES = Checkin.__table__, RoomStatus.__table__
_CHECKIN_INSERTED = [c.name for c in _CHECKINS.c if c.name not in ("id", "superseded_by_id", "names_purged_at")]
_INSERT_CHECKIN = _CHECKINS.insert().returning(_CHECKINS.c.id)
_CHECKIN_BY_KEY = select(_CHECKINS.c.id, _CHECKINS.c.person_id).where(
    _CHECKINS.c.run_id == bindparam("run_id"), _CHECKINS.c.idempotency_key == bindparam("key"))
_THIS_ROOM = and_(_ROOM_STATUSES.c.run_id == bindparam("this_run"), _ROOM_STATUSES.c.room_id == bindparam("this_room"))
_ROOM_STATUS = select(_ROOM_STATUSES).where(_THIS_ROOM)
_INSERT_ROOM_STATUS = _ROOM_STATUSES.insert().values(reports=1)
_UPDATE_ROOM_STATUS = _ROOM_STATUSES.update().where(_THIS_ROOM).values(reports=_ROOM_STATUSES.c.reports + 1)
_SUPERSEDE = _CHECKINS.update().where(_CHECKINS.c.id == bindparam("old_id")).values(
    superseded_by_id=bindparam("new_id"))


@cache
def _store_statement():
    """PostgreSQL: WITH new (the report), prev (the room's latest), superseded, latest (upsert): built once.

    Returns the new report's id, the previous latest report's columns (NULL for a room's first
    report) and the school's expected room count. Every part sees the snapshot taken before it, so
    `prev` is the room's state before this report; the room's advisory lock orders its reports.
    """
    new = _CHECKINS.insert().values({name: bindparam(f"new_{name}", type_=_CHECKINS.c[name].type)
                                     for name in _CHECKIN_INSERTED}).returning(_CHECKINS.c.id).cte("new")
    prev = select(_ROOM_STATUSES).where(_THIS_ROOM).cte("prev")
    superseded = (_CHECKINS.update().where(_CHECKINS.c.id == select(prev.c.checkin_id).scalar_subquery())
                  .values(superseded_by_id=select(new.c.id).scalar_subquery()).returning(_CHECKINS.c.id)
                  .cte("superseded"))
    replaced = ["status", "reported_at", *COUNT_FIELDS]
    values = {name: bindparam(f"status_{name}", type_=_ROOM_STATUSES.c[name].type)
              for name in ("run_id", "room_id", *replaced)}
    insert_latest = upsert("postgresql", _ROOM_STATUSES).from_select(
        [*values, "checkin_id", "first_reported_at", "reports"],
        select(*values.values(), new.c.id, values["reported_at"], literal(1)).select_from(new))
    latest = insert_latest.on_conflict_do_update(
        index_elements=[_ROOM_STATUSES.c.run_id, _ROOM_STATUSES.c.room_id],
        set_={"checkin_id": insert_latest.excluded.checkin_id, "reports": _ROOM_STATUSES.c.reports + 1,
              **{name: insert_latest.excluded[name] for name in replaced}},
    ).returning(_ROOM_STATUSES.c.room_id).cte("latest")
    return (select(new.c.id, prev.c.checkin_id, prev.c.status, *(prev.c[name] for name in COUNT_FIELDS),
                   _EXPECTED_COUNT.scalar_subquery().label("expected"))
            .select_from(new.outerjoin(prev, true())).add_cte(superseded, latest))


def list_checkins(session: Session, principal: Principal, run_id: int, room_id: int | None = None) -> list[dict]:
    """Every check-in of a run (the history, superseded ones included), newest first."""
    run = get_run(session, principal, run_id)
    query = select(Checkin).where(Checkin.run_id == run.id)
    if room_id is not None:
        query = query.where(Checkin.room_id == room_id)
    names = may_read_names(principal, run)
    rows = list(session.scalars(query.order_by(Checkin.id.desc())))
    _log_name_read(principal, run, names and any(r.missing_students or r.injured_students for r in rows))
    return [checkin_view(c, names=names) for c in rows]


def checkin_view(checkin: Checkin, *, names: bool, room: dict | None = None) -> dict:
    """A check-in (or a row with its columns) as the API shows it; names and the note only when `names`."""
    view = {"id": checkin.id, "run_id": checkin.run_id, "room_id": checkin.room_id,
            "room": room or _room_ref(checkin.room), "status": checkin.status,
            **{name: getattr(checkin, name) for name in COUNT_FIELDS},
            "location": checkin.location, "late": checkin.late, "channel": checkin.channel,
            "reporter": {"id": checkin.person_id, "name": checkin.reporter_name},
            "reported_at": iso(checkin.created_at), "superseded_by_id": checkin.superseded_by_id,
            "latest": checkin.superseded_by_id is None, "has_note": bool(checkin.note),
            "names_purged": checkin.names_purged_at is not None}
    if names:
        view.update(missing_students=checkin.missing_students or [],
                    injured_students=checkin.injured_students or [], note=checkin.note)
    return view


def may_read_names(principal: Principal, run: Run) -> bool:
    """Student names: the school's and the district's admins, and partners during a real run."""
    return principal.is_admin_of(run.school_id) or (principal.is_partner and run.mode == "real")


def _log_name_read(principal: Principal, run: Run, shown: bool) -> None:
    # §2-d: log who read student data, never the data itself.
    if shown:
        log.info("student names of run %s shown to account %s (%s)", run.id, principal.account_id, principal.role)


# -- roll-up -------------------------------------------------------------------------------------
def counts_for_run(session: Session, run: Run) -> dict:
    """The run's accountability in numbers: expected, reported, percent, totals, need_help, fully_accounted_at."""
    tally = session.execute(_TALLY, {"run_id": run.id}).one_or_none()
    return _counts_view(tally, expected_room_count(session, run.school_id))


def expected_room_count(session: Session, school_id: int) -> int:
    """How many rooms of the school must report (an indexed count: it does not grow with the reports)."""
    return session.scalar(_EXPECTED_COUNT, {"school_id": school_id}) or 0


def _room_is_expected(session: Session, room: Room) -> bool:
    if room.kind == "classroom" and (room.capacity or 0) > 0:
        return True
    return bool(session.scalar(select(exists().where(Person.home_room_id == room.id, Person.active.is_(True)))))


def _move_tally(session: Session, run: Run, change: dict, *, first_expected_at: datetime | None):
    """Add a check-in's difference to the run's tally (created by the first check-in); returns the new tally."""
    statement = _tally_upsert(session.get_bind().dialect.name)
    return session.execute(statement, {"run_id": run.id, "last_expected_first_at": first_expected_at,
                                       **{name: change[name] for name in _TALLY_COUNTERS}}).one()


@cache
def _tally_upsert(dialect: str):
    """INSERT a tally or add to the existing one, returning it (built once per database)."""
    return _adding_to_tally(upsert(dialect, RunTally.__table__))


def _adding_to_tally(statement):
    """An INSERT into the tallies that adds to the run's row when there is one, returning the row."""
    tallies = RunTally.__table__
    new, old = statement.excluded.last_expected_first_at, tallies.c.last_expected_first_at
    return statement.on_conflict_do_update(index_elements=[tallies.c.run_id], set_={
        **{name: tallies.c[name] + statement.excluded[name] for name in _TALLY_COUNTERS},
        # The later of the two: concurrent check-ins may commit out of the order of their clocks.
        "last_expected_first_at": case((new.is_(None), old), (old.is_(None), new), (new > old, new), else_=old),
    }).returning(*tallies.c)


def _counts_view(tally, expected: int) -> dict:
    """The numbers of a tally row (None before the first check-in) against the expected rooms."""
    reported = tally.reported if tally else 0
    fully = tally.last_expected_first_at if tally and expected and reported >= expected else None
    return {
        "expected": expected, "reported": reported, "reported_rooms": tally.reported_rooms if tally else 0,
        "percent": round(100.0 * reported / expected, 1) if expected else 0.0,
        **{name: getattr(tally, name) if tally else 0 for name in COUNT_FIELDS},
        "need_help": tally.need_help if tally else 0, "fully_accounted_at": iso(fully),
    }


_ROLLUP_SCHEMA = RollupSchema()
_TALLY_COUNTERS = ("reported", "reported_rooms", *COUNT_FIELDS, "need_help")
# Built once: constructing a statement costs more Python than running it.
_TALLY = select(*RunTally.__table__.c).where(RunTally.run_id == bindparam("run_id"))
_EXPECTED_COUNT = select(func.count()).select_from(Room).where(_expected(bindparam("school_id")))


def _seconds(run: Run, at: datetime | None) -> float | None:
    return None if at is None else round((at - run.started_at).total_seconds(), 3)


def rollup(session: Session, principal: Principal, run_id: int) -> dict:
    """The live roll-up of a run: expected and reported rooms, totals, who needs help, figures."""
    run = get_run(session, principal, run_id)
    names = may_read_names(principal, run)
    view, names_shown = _rollup_view(session, run, names)
    _log_name_read(principal, run, names_shown)
    view["elapsed_seconds"] = _seconds(run, run.ended_at or utcnow())
    return view


def rollup_json(session: Session, principal: Principal, run_id: int, cache: RollupCache) -> bytes:
    """The roll-up as its JSON body, built once per run version and audience (see accountability.cache)."""
    run = get_run(session, principal, run_id)
    names = may_read_names(principal, run)
    entry = cache.get((run.id, run.last_seq, names), lambda: _serialised_rollup(session, run, names))
    _log_name_read(principal, run, entry.meta)
    # The one field that moves with the clock, not with the run: spliced in, never cached.
    elapsed = json.dumps(_seconds(run, run.ended_at or utcnow())).encode()
    return b'{"elapsed_seconds": ' + elapsed + b", " + entry.body[1:]


def _serialised_rollup(session: Session, run: Run, names: bool) -> tuple[bytes, bool]:
    view, names_shown = _rollup_view(session, run, names)
    return json.dumps(_ROLLUP_SCHEMA.dump(view), separators=(",", ":")).encode(), names_shown


def _rollup_view(session: Session, run: Run, names: bool) -> tuple[dict, bool]:
    """The roll-up without elapsed_seconds, and whether it shows any student name."""
    expected_rooms = session.execute(select(Room.id, Room.number, Room.name).where(_expected(run.school_id))
                                     .order_by(Room.number)).all()
    expected_ids = {room.id for room in expected_rooms}
    counts = _counts_view(session.execute(_TALLY, {"run_id": run.id}).one_or_none(), len(expected_ids))
    # Plain rows, not ORM objects: building a thousand entities would cost more than the query.
    rows = session.execute(select(*Checkin.__table__.c, Room.number.label("room_number"),
                                  Room.name.label("room_name"), RoomStatus.reports, RoomStatus.first_reported_at)
                           .join(Checkin, Checkin.id == RoomStatus.checkin_id)
                           .join(Room, Room.id == RoomStatus.room_id).where(RoomStatus.run_id == run.id)
                           .order_by(Room.number)).all()
    reported_ids = {row.room_id for row in rows}
    unreported = [room for room in expected_rooms if room.id not in reported_ids]
    rooms = []
    for row in rows:
        view = checkin_view(row, names=names, room={"id": row.room_id, "number": row.room_number,
                                                    "name": row.room_name,
                                                    "label": room_label(row.room_number, row.room_name)})
        view.update(expected=row.room_id in expected_ids, reports=row.reports,
                    first_reported_at=iso(row.first_reported_at), attention=attention(row))
        rooms.append(view)
    names_shown = names and any(r.get("missing_students") or r.get("injured_students") for r in rooms)
    figures = _figures(run, len(expected_ids),
                       sorted(row.first_reported_at for row in rows if row.room_id in expected_ids),
                       min((row.first_reported_at for row in rows), default=None))
    return {
        "run_id": run.id, "school_id": run.school_id, "mode": run.mode, "state": run.state,
        "required": bool(run.playbook.get("accountability", {}).get("required")),
        "expected_rule": EXPECTED_ROOM_RULE, "expected": counts["expected"], "reported": counts["reported"],
        "reported_rooms": counts["reported_rooms"], "percent_reported": counts["percent"],
        "unreported_rooms": [_room_ref(r) for r in unreported],
        "totals": {name: counts[name] for name in COUNT_FIELDS},
        "need_help": [r for r in rooms if r["status"] == NEED_HELP],
        "staff_needing_help": [s for s in staff_views(session, run) if s["status"] == NEED_HELP],
        "rooms": rooms, "started_at": iso(run.started_at), "ended_at": iso(run.ended_at),
        "fully_accounted_at": counts["fully_accounted_at"],
        "seconds_to_fully_accounted": figures["seconds_to_100_percent"],
        "figures": figures, "names_included": names,
    }, bool(names_shown)


def attention(report) -> str:
    """How urgent a room's latest report is, worst first: need_help, missing, injured, accounted.

    A room with a missing or injured student is never "accounted", whatever status was sent.
    """
    if report.status == NEED_HELP:
        return "need_help"
    if report.missing:
        return "missing"
    if report.injured:
        return "injured"
    return "accounted"


def open_items(session: Session, principal: Principal, run_id: int) -> dict:
    """What is still open before the all-clear: rooms unreported or needing help, missing and injured
    students (names: admins), staff needing help, recipients who never acknowledged."""
    run = get_run(session, principal, run_id)
    if not principal.is_admin_of(run.school_id):
        raise Forbidden("Only the school's admins give the all-clear.")
    board = rollup(session, principal, run_id)
    rooms = [{"room": r["room"], "status": r["status"], "attention": r["attention"], "missing": r["missing"],
              "injured": r["injured"], "reporter": r["reporter"], "reported_at": r["reported_at"],
              "missing_students": r.get("missing_students", []), "injured_students": r.get("injured_students", [])}
             for r in board["rooms"] if r["attention"] != "accounted"]
    items = {
        "run_id": run.id, "state": run.state,
        "unreported_rooms": board["unreported_rooms"],
        "rooms_needing_help": [r for r in rooms if r["status"] == NEED_HELP],
        "rooms_with_missing": [r for r in rooms if r["missing"]],
        "rooms_with_injured": [r for r in rooms if r["injured"]],
        "missing": board["totals"]["missing"], "injured": board["totals"]["injured"],
        "staff_needing_help": board["staff_needing_help"],
        "unacknowledged": unacknowledged(session, run.id),
    }
    items["anything_open"] = any(items[key] for key in (
        "unreported_rooms", "rooms_needing_help", "missing", "injured", "staff_needing_help", "unacknowledged"))
    return items


def accountability_figures(session: Session, run: Run) -> dict:
    """Seconds from the start to the first check-in and to 50%, 90% and 100% of expected rooms reported."""
    expected = session.scalar(select(func.count()).select_from(Room).where(_expected(run.school_id))) or 0
    firsts = list(session.scalars(select(RoomStatus.first_reported_at).join(Room, Room.id == RoomStatus.room_id)
                                  .where(RoomStatus.run_id == run.id, _expected(run.school_id))
                                  .order_by(RoomStatus.first_reported_at)))
    first_any = session.scalar(select(func.min(RoomStatus.first_reported_at)).where(RoomStatus.run_id == run.id))
    return _figures(run, expected, firsts, first_any)


def _figures(run: Run, expected: int, firsts: list[datetime], first_any: datetime | None) -> dict:
    """The figures from the expected rooms' first reports (in order) and the run's first report of all."""
    figures = {"expected": expected, "first_checkin_at": iso(first_any),
               "seconds_to_first_checkin": _seconds(run, first_any)}
    for percent in (50, 90, 100):
        needed = math.ceil(expected * percent / 100)
        at = firsts[needed - 1] if expected and len(firsts) >= needed else None
        figures[f"at_{percent}_percent"] = iso(at)
        figures[f"seconds_to_{percent}_percent"] = _seconds(run, at)
    return figures


def curve(session: Session, run: Run) -> list[dict]:
    """Rooms reported over time, one point per room's first report, for the after-action chart."""
    firsts = session.scalars(select(RoomStatus.first_reported_at).where(RoomStatus.run_id == run.id)
                             .order_by(RoomStatus.first_reported_at))
    return [{"at": iso(at), "seconds": _seconds(run, at), "reported": n} for n, at in enumerate(firsts, start=1)]


def run_curve(session: Session, principal: Principal, run_id: int) -> dict:
    """The curve of a run the caller may see."""
    run = get_run(session, principal, run_id)
    return {"run_id": run.id, "started_at": iso(run.started_at), "points": curve(session, run)}


def unreported_rooms(session: Session, run: Run) -> list[Room]:
    """Expected rooms of the run that have not reported yet, by number."""
    return list(session.scalars(select(Room).where(_expected(run.school_id), ~exists(
        select(RoomStatus.room_id).where(RoomStatus.run_id == run.id, RoomStatus.room_id == Room.id)))
        .order_by(Room.number)))


# -- staff status --------------------------------------------------------------------------------
def set_staff_status(session: Session, principal: Principal, run_id: int, status: str, *,
                     note: str | None = None, location: str | None = None) -> StaffStatus:
    """A staff member says "I am safe" or "I need help" from the app."""
    run = _reporting_run(session, principal, run_id)
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
               "room": _room_ref(room) if room else None, "location": place, "channel": channel,
               "has_note": bool(note)}
    event = timeline.record(session, run, "staff.status", payload, actor=actor_of(person))
    if alert:
        alert_help(session, run, person, event.seq, room_label=place or (room.label if room else None),
                   exclude_person_id=person.id)
    session.commit()
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
            "room": _room_ref(row.room) if row.room else None, "updated_at": iso(row.updated_at)}
    if notes:
        view["note"] = row.note
    return view


def staff_board(session: Session, principal: Principal, run_id: int) -> dict:
    """Who said they are safe and who needs help; notes for staff, not partners."""
    run = get_run(session, principal, run_id)
    staff = staff_views(session, run, notes=not principal.is_partner)
    return {"run_id": run.id, "safe": sum(s["status"] == SAFE for s in staff),
            "need_help": sum(s["status"] == NEED_HELP for s in staff), "staff": staff}


# -- alerts --------------------------------------------------------------------------------------
def queue_texts(session: Session, run: Run, event_seq: int, occasion: str, recipients: list[Person | Partner],
                body: str, *, priority: int, voice_for_partners: bool = False, voice_fallback: bool = False) -> int:
    """Put one SMS (and a call where asked) per recipient in the outbox; returns how many were queued.

    `voice_for_partners`: partners get a call too; `voice_fallback`: whoever replied STOP gets a call instead.
    """
    outgoing = [Outgoing.to(recipient, ["sms", "voice"] if voice_for_partners and isinstance(recipient, Partner)
                            else ["sms"], body, priority=priority, call_if_opted_out=voice_fallback)
                for recipient in recipients]
    return sum(1 for row in queue(session, run, event_seq, occasion, outgoing) if row["status"] == QUEUED)


def school_admins(session: Session, run: Run) -> list[Person]:
    """The school's admins; the district admins when the school has none."""
    admins = [p for p in people_of(session, run.school_id, include_district=False) if p.role == SCHOOL_ADMIN]
    return admins or [p for p in people_of(session, run.school_id) if p.role == DISTRICT_ADMIN]


def alert_help(session: Session, run: Run, person: Reporter, event_seq: int, *, room_label: str | None,
               exclude_person_id: int | None = None) -> int:
    """Urgent SMS to the school's admins (and SMS + call to partners in a real run): someone needs help."""
    body = help_text(run.mode, person.name, room_label, run.school.name)
    recipients: list[Person | Partner] = [p for p in school_admins(session, run) if p.id != exclude_person_id]
    if run.mode == "real":
        recipients.extend(partners_of(session, run.school_id))
    return queue_texts(session, run, event_seq, "help", recipients, body, priority=HELP_PRIORITY,
                       voice_for_partners=True, voice_fallback=True)
