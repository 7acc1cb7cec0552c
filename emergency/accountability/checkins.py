"""Classroom check-ins: one path for the app and SMS, the room's latest status, the live pushes.

On PostgreSQL a check-in is one statement, committed on its own (see `_record`): the report, the
room's latest status, the run's tally and the timeline entry, in the order of the room's row lock.
`apply_untallied` finishes reports an earlier version stored and had still to tally."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import (
    JSON,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emergency.accountability.models import (
    ALL_ACCOUNTED,
    COUNT_FIELDS,
    MAX_COUNT,
    NEED_HELP,
    STUDENTS_MISSING,
    Checkin,
    RoomStatus,
    RunTally,
)
from emergency.accountability.rooms import (
    Reporter,
    actor_of,
    expected_room_count,
    must_report,
    reporting_run_and_room,
    resolve_location,
    room_is_expected,
    room_ref,
)
from emergency.accountability.tally import TALLY_COUNTERS, adding_to_tally, counts_view, move_tally
from emergency.accountability.texts import alert_help
from emergency.db import is_postgres, outside_transaction, runs_outside_transaction, upsert
from emergency.directory.models import Person, Room
from emergency.directory.principal import Principal
from emergency.errors import Conflict, ValidationFailed
from emergency.realtime.push import ADMINS
from emergency.runs import timeline
from emergency.runs.models import ACTIVE, Run, RunEvent
from emergency.runs.partners import checkin_for_partner
from emergency.runs.service import get_run
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)


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


def _reported_room_id(room_id: int | None, person: Reporter) -> int | None:
    """The room a report is for: the one named, or else the reporter's home room."""
    return room_id if room_id is not None else person.home_room_id


def _resolve_room(session: Session, run: Run, room_id: int | None, person: Reporter, read: Room | None) -> Room:
    """The room reported for, a room of the run's school (`read`: that room, if the caller read it already)."""
    room_id = _reported_room_id(room_id, person)
    if room_id is None:
        raise ValidationFailed("Say which room you report for: you have no home room.",
                               errors={"room_id": ["required: you have no home room"]})
    room = read if read is not None and read.id == room_id else session.get(Room, room_id)
    if room is None or room.school_id != run.school_id:
        raise ValidationFailed(f"Room {room_id} is not a room of {run.school.name}.",
                               errors={"room_id": [f"not a room of {run.school.name}"]})
    return room


def check_in(session: Session, principal: Principal, run_id: int, request: CheckinRequest, *,
             idempotency_key: str | None = None) -> tuple[dict, bool]:
    """A staff member reports a room from the app; returns (the check-in as the caller may see it, created)."""
    run, room = reporting_run_and_room(session, principal, run_id, _reported_room_id(request.room_id, principal))
    checkin, created = record_checkin(session, run, principal, request, channel="app",
                                      idempotency_key=idempotency_key, room=room)
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
                   idempotency_key: str | None = None, room: Room | None = None) -> tuple[Checkin, bool]:
    """Record a check-in by staff of the run's school (the caller checked), replace the room's latest status, push.

    The one path for the app and SMS: `person` is the reporter, a Person or the calling Principal.
    `room`: the room reported for, if the caller has read it (reporting_run_and_room).
    """
    # A replayed key is found by the unique index when the report is stored, not looked up first: a
    # school's first reports are nearly all new, and the lookup would be a round trip on each of them.
    try:
        room = _resolve_room(session, run, request.room_id, person, room)
        _check_counts(request)
        location = resolve_location(session, run, request.location)
    except ValidationFailed:
        # A replay is answered with what was recorded, even if the room has gone since.
        if (existing := _existing_for_key(session, run, person, idempotency_key)) is not None:
            return existing, False
        raise
    try:
        checkin = _record(session, run, person, room, request, location, channel, idempotency_key)
        # The check-in's own boundary, not the caller's: on PostgreSQL its tally statement ran outside
        # the transaction (see _record), and the school's phones hear of it as soon as this commits.
        session.commit()
    except IntegrityError:
        # The check-in was recorded before (an offline replay), or is being recorded by a request
        # carrying the same key at this moment.
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
    counts = {name: getattr(request, name) for name in COUNT_FIELDS}
    # Not added to the session: it is inserted by a plain statement and returned to the caller as it was sent.
    checkin = Checkin(run_id=run.id, room_id=room.id, room=room, person_id=person.id, reporter_name=person.name,
                      channel=channel, status=request.status, location=location,
                      missing_students=request.missing_students or None,
                      injured_students=request.injured_students or None, note=request.note,
                      late=run.state != ACTIVE, idempotency_key=idempotency_key, created_at=now,
                      tallied_at=now, **counts)
    room_key = {"run_id": run.id, "room_id": room.id, "status": checkin.status, "reported_at": now, **counts}
    event = _checkin_event(run, checkin, room, None, actor_of(person))
    if is_postgres(session):
        tally, latest, expected = _store_and_tally(session, run, checkin, room, room_key, event)
    else:
        # SQLite writes one transaction at a time anyway: everything goes in this one.
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
        tally = move_tally(session, run, change, first_expected_at=now if change["reported"] else None)
        event.payload.update(checkin_id=checkin.id, supersedes=latest.checkin_id if latest else None)
        timeline.append(session, run, event)
    _publish(session, run, event, tally, expected, room, checkin.status)
    if checkin.status == NEED_HELP and (latest is None or latest.status != NEED_HELP):
        alert_help(session, run, person, event.seq, room_label=room.label, exclude_person_id=person.id)
    log.debug("check-in %s recorded: run %s room %s (%s, %s)", checkin.id, run.id, room.id, channel,
             checkin.status)
    return checkin


def _store_and_tally(session: Session, run: Run, checkin: Checkin, room: Room, room_key: dict, event: RunEvent):
    """PostgreSQL: the report, the room's latest status, the tally and the timeline entry in one statement.

    Every room of the school queues on the run's tally and sequence, so their row locks are held only
    while the database runs the statement: it is a transaction of its own, no round trip holds them.
    A report of `need_help` is the exception: it runs in a transaction that the caller commits, so
    that the alert of a room that newly needs help is queued with it or not at all.

    Returns (the new tally, the report the room's latest replaced or None, the expected rooms); fills
    in checkin.id, event.id, event.seq and the event's checkin_id and supersedes.
    """
    if checkin.status == NEED_HELP or not runs_outside_transaction(session):
        # The request's reads (token, run, room) had a transaction: end it, and run the statement in a
        # transaction of its own. (A request of reads_outside_transaction keeps its connection.)
        session.commit()
        if checkin.status != NEED_HELP:
            outside_transaction(session)
    row = session.connection().execute(_checkin_statement(), {
        **{f"new_{name}": getattr(checkin, name) for name in _CHECKIN_INSERTED},
        **{f"status_{name}": value for name, value in room_key.items()},
        "expected_school": run.school_id,
        "now": room_key["reported_at"], "is_need_help": int(checkin.status == NEED_HELP),
        **timeline.append_params(event)}).one()
    checkin.id, event.id, event.seq = row.id, row.event_id, row.event_seq
    if row.previous_checkin_id is not None and not row.linked:
        # The report replaced was committed after this statement began: its row was not yet visible to
        # the UPDATE that links it, though the room's row (locked, so read as last committed) named it.
        session.execute(_SUPERSEDE, {"old_id": row.previous_checkin_id, "new_id": checkin.id})
    event.payload.update(checkin_id=checkin.id, supersedes=row.previous_checkin_id)
    timeline.appended_to(run, event)
    latest = None
    if row.previous_checkin_id is not None:
        latest = _Previous(row.previous_checkin_id, row.previous_status,
                           *(getattr(row, f"previous_{name}") for name in COUNT_FIELDS))
    return row, latest, row.expected


@dataclass(frozen=True)
class _Previous:
    """The report a room's latest replaced, as the check-in statement found it."""

    checkin_id: int
    status: str
    present: int
    absent: int
    missing: int
    injured: int
    extra: int


def _change(session: Session, checkin: Checkin, room: Room, previous) -> dict:
    """What a check-in adds to the run's tally, given the room's previous latest report (None: first)."""
    if previous is None:
        change = {name: getattr(checkin, name) for name in COUNT_FIELDS}
        change.update(reported_rooms=1, reported=int(room_is_expected(session, room)))
    else:
        change = {name: getattr(checkin, name) - getattr(previous, name) for name in COUNT_FIELDS}
        change.update(reported_rooms=0, reported=0)
    change["need_help"] = (checkin.status == NEED_HELP) - (previous is not None and previous.status == NEED_HELP)
    return change


def _checkin_event(run: Run, checkin: Checkin, room: Room, supersedes: int | None, actor: dict) -> RunEvent:
    """The unsaved `checkin.recorded` timeline entry of a check-in."""
    # No names and no note in events: they are stored for ever and pushed to every screen.
    payload = {"checkin_id": checkin.id, "room": room_ref(room), "status": checkin.status,
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
                       {**counts_view(tally, expected), "room": {**room_ref(room), "status": status}},
                       coalesce=True)


def _apply(session: Session, run: Run, checkin_id: int, change: dict, event: RunEvent, *, autocommit: bool,
           first_expected_at: datetime | None):
    """PostgreSQL: mark the check-in tallied, move the tally and append its timeline entry, in one statement.

    With `autocommit` the statement is its own transaction, so its row locks are held only while the
    database runs it. Nothing happens if the check-in was applied already. Returns the new tally, or
    None; fills in event.id and event.seq.
    """
    if autocommit:
        outside_transaction(session)
    row = session.connection().execute(_apply_statement(), {
        "mark_id": checkin_id, "mark_at": utcnow(), "tally_run_id": run.id, "tally_first": first_expected_at,
        **{f"tally_{name}": change[name] for name in TALLY_COUNTERS}, **timeline.append_params(event),
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
    counters = [bindparam(f"tally_{name}", type_=Integer) for name in TALLY_COUNTERS]
    moved = adding_to_tally(upsert("postgresql", RunTally.__table__).from_select(
        ["run_id", *TALLY_COUNTERS, "last_expected_first_at"],
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


# The right-hand sides read the row as it was: the report being replaced (as on PostgreSQL, below).
_UPDATE_ROOM_STATUS = _ROOM_STATUSES.update().where(_THIS_ROOM).values(
    reports=_ROOM_STATUSES.c.reports + 1, previous_checkin_id=_ROOM_STATUSES.c.checkin_id,
    previous_status=_ROOM_STATUSES.c.status,
    **{f"previous_{name}": _ROOM_STATUSES.c[name] for name in COUNT_FIELDS})


_SUPERSEDE = _CHECKINS.update().where(_CHECKINS.c.id == bindparam("old_id")).values(
    superseded_by_id=bindparam("new_id"))


@cache
def _checkin_statement():
    """PostgreSQL: a check-in as one statement, built once. WITH
    - new: the report;
    - latest: the room's latest status, inserted or replaced by ON CONFLICT DO UPDATE. That takes the
      room's row lock and sees its last committed version whatever this statement's snapshot, so the
      row remembers the report it replaced (previous_*) exactly, however many phones report the room;
    - superseded: the replaced report linked to the new one (see _store_and_tally for the rare miss);
    - tally: the run's tally moved by the difference from the replaced report;
    - appended: the timeline entry, its sequence number taken after the room's lock, so a room's
      reports are on the timeline in the order they replaced each other.

    Returns the new report's id, the replaced report's columns (NULL for a room's first report), the
    new tally, the timeline entry's id and seq, whether the link was written and the expected rooms.
    """
    # The school's expected rooms (and whether this is one) are counted first, before the statement
    # takes a lock every room of the school queues on. (Not a parameter named school_id: the UPDATE
    # of the run's sequence would set the column of that name.)
    inserted = {name: bindparam(f"new_{name}", type_=_CHECKINS.c[name].type) for name in _CHECKIN_INSERTED}
    must = must_report(bindparam("expected_school"))
    expected = select(func.count()).select_from(Room).where(must).scalar_subquery()
    # 1 if this room must report now (`reported` counts a room by what it was when it first reported)
    this_room_expected = select(func.count()).select_from(Room).where(Room.id == inserted["room_id"], must
                                                                      ).scalar_subquery()
    new = _CHECKINS.insert().values(inserted).returning(
        _CHECKINS.c.id, expected.label("expected"), this_room_expected.label("expected_room")).cte("new")
    rooms = _ROOM_STATUSES.c
    replaced = ["status", "reported_at", *COUNT_FIELDS]
    values = {name: bindparam(f"status_{name}", type_=rooms[name].type) for name in ("run_id", "room_id", *replaced)}
    insert_latest = upsert("postgresql", _ROOM_STATUSES).from_select(
        [*values, "checkin_id", "first_reported_at", "reports"],
        select(*values.values(), new.c.id, values["reported_at"], literal(1)).select_from(new))
    latest = insert_latest.on_conflict_do_update(
        index_elements=[rooms.run_id, rooms.room_id],
        set_={"checkin_id": insert_latest.excluded.checkin_id, "reports": rooms.reports + 1,
              **{name: insert_latest.excluded[name] for name in replaced},
              # The right-hand sides read the row as it was: the report being replaced.
              "previous_checkin_id": rooms.checkin_id, "previous_status": rooms.status,
              **{f"previous_{name}": rooms[name] for name in COUNT_FIELDS}},
    ).returning(*(rooms[f"previous_{name}"] for name in ("checkin_id", "status", *COUNT_FIELDS))).cte("latest")
    superseded = (_CHECKINS.update().where(_CHECKINS.c.id == select(latest.c.previous_checkin_id).scalar_subquery())
                  .values(superseded_by_id=select(new.c.id).scalar_subquery()).returning(_CHECKINS.c.id)
                  .cte("superseded"))
    first = latest.c.previous_checkin_id.is_(None)
    expected_room = select(new.c.expected_room).scalar_subquery()
    moved = {"reported": case((first, expected_room), else_=0), "reported_rooms": case((first, 1), else_=0),
             **{name: values[name] - func.coalesce(latest.c[f"previous_{name}"], 0) for name in COUNT_FIELDS},
             "need_help": bindparam("is_need_help", type_=Integer)
             - case((latest.c.previous_status == NEED_HELP, 1), else_=0)}
    first_expected_at = case((and_(first, expected_room == 1), bindparam("now", type_=rooms.reported_at.type)))
    tally = adding_to_tally(upsert("postgresql", RunTally.__table__).from_select(
        ["run_id", *TALLY_COUNTERS, "last_expected_first_at"],
        select(values["run_id"], *(moved[name] for name in TALLY_COUNTERS), first_expected_at).select_from(latest),
    )).cte("tally")
    # The entry's payload is the one sent, with the report's id and the one it replaced filled in.
    ids = select(func.jsonb_build_object("checkin_id", new.c.id, "supersedes", latest.c.previous_checkin_id)
                 ).select_from(new.join(latest, true())).scalar_subquery()
    payload = cast(cast(bindparam("event_payload", type_=JSONB), JSONB).op("||", return_type=JSONB)(ids), JSON)
    appended = timeline.append_cte(guard=latest, payload=payload)
    linked = select(func.count()).select_from(superseded).scalar_subquery()
    return (select(new.c.id, *latest.c, *tally.c, appended.c.id.label("event_id"), appended.c.seq.label("event_seq"),
                   linked.label("linked"), new.c.expected)
            .select_from(new.join(latest, true()).join(tally, true()).join(appended, true())))


def list_checkins(session: Session, principal: Principal, run_id: int, room_id: int | None = None) -> list[dict]:
    """Every check-in of a run (the history, superseded ones included), newest first."""
    run = get_run(session, principal, run_id)
    query = select(Checkin).where(Checkin.run_id == run.id)
    if room_id is not None:
        query = query.where(Checkin.room_id == room_id)
    names = may_read_names(principal, run)
    rows = list(session.scalars(query.order_by(Checkin.id.desc())))
    log_name_read(principal, run, names and any(r.missing_students or r.injured_students for r in rows))
    views = [checkin_view(c, names=names) for c in rows]
    return [checkin_for_partner(v) for v in views] if principal.is_partner else views


def checkin_view(checkin: Checkin, *, names: bool, room: dict | None = None) -> dict:
    """A check-in (or a row with its columns) as the API shows it; names and the note only when `names`."""
    view = {"id": checkin.id, "run_id": checkin.run_id, "room_id": checkin.room_id,
            "room": room or room_ref(checkin.room), "status": checkin.status,
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
    """Student names: the school's and the district's admins; partners (real runs) the names of missing
    students when the playbook says `accountability.partner_missing_names` (runs.partners drops the rest)."""
    return principal.is_admin_of(run.school_id) or (
        principal.is_partner and run.mode == "real"
        and bool(run.playbook.get("accountability", {}).get("partner_missing_names")))


def log_name_read(principal: Principal, run: Run, shown: bool) -> None:
    # §2-d: log who read student data, never the data itself.
    if shown:
        log.info("student names of run %s shown to account %s (%s)", run.id, principal.account_id, principal.role)
