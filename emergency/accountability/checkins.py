"""Classroom check-ins: one path for the app and SMS, the room's latest status, the live pushes.

On PostgreSQL a check-in is stored, committed, then tallied in a statement of its own (see `_record`);
`apply_untallied` finishes any the process stopped between the two steps."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    func,
    literal,
    select,
    true,
)
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
    EXPECTED_COUNT,
    Reporter,
    actor_of,
    expected_room_count,
    reporting_run,
    resolve_location,
    room_is_expected,
    room_ref,
)
from emergency.accountability.tally import TALLY_COUNTERS, adding_to_tally, counts_view, move_tally
from emergency.accountability.texts import alert_help
from emergency.db import is_postgres, outside_transaction, upsert
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


def _resolve_room(session: Session, run: Run, room_id: int | None, person: Reporter) -> Room:
    """The room reported for, a room of the run's school; on PostgreSQL, with its lock (see _lock_room) taken."""
    room_id = room_id if room_id is not None else person.home_room_id
    if room_id is None:
        raise ValidationFailed("Say which room you report for: you have no home room.",
                               errors={"room_id": ["required: you have no home room"]})
    if is_postgres(session):
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


# PostgreSQL: the room of the school, locking its reports in this run until the commit. Reports of
# one room are serialised so its latest row and the supersede link are written in order. Only the
# room, not the run: the run's row is locked later, by the timeline's sequence number, for as short
# a time as possible, since every room of the school queues on it. (The function runs only for the
# row found: a room of another school is neither returned nor locked.)
_ROOM_LOCKED = select(Room, func.pg_advisory_xact_lock(bindparam("run_id"), Room.id)).where(
    Room.id == bindparam("room_id"), Room.school_id == bindparam("school_id"))


def check_in(session: Session, principal: Principal, run_id: int, request: CheckinRequest, *,
             idempotency_key: str | None = None) -> tuple[dict, bool]:
    """A staff member reports a room from the app; returns (the check-in as the caller may see it, created)."""
    run = reporting_run(session, principal, run_id)
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
    # A replayed key is found by the unique index when the report is stored, not looked up first: a
    # school's first reports are nearly all new, and the lookup would be a round trip on each of them.
    try:
        room = _resolve_room(session, run, request.room_id, person)
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
    postgres = is_postgres(session)
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
        # On the session's Core connection, like the token lookup: the ORM's execute path is a third of
        # a statement's Python, and nothing of the session's needs flushing first.
        stored = session.connection().execute(_store_statement(), {
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
        tally = move_tally(session, run, change, first_expected_at=now if change["reported"] else None)
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
    log.debug("check-in %s recorded: run %s room %s (%s, %s)", checkin.id, run.id, room.id, channel,
             checkin.status)
    return checkin


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
                   EXPECTED_COUNT.scalar_subquery().label("expected"))
            .select_from(new.outerjoin(prev, true())).add_cte(superseded, latest))


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
