"""The live roll-up of a run, what is open before the all-clear, and the after-action figures.

The roll-up reads `room_statuses` (one row per reported room, counts copied from its latest
check-in), never the check-in history, so it costs the same for the 60th room as for the first."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from emergency.accountability.cache import RollupCache
from emergency.accountability.checkins import checkin_view, log_name_read, may_read_names
from emergency.accountability.models import (
    COUNT_FIELDS,
    NEED_HELP,
    Checkin,
    RoomStatus,
)
from emergency.accountability.rooms import EXPECTED_ROOM_RULE, must_report, room_ref
from emergency.accountability.schemas import RollupSchema
from emergency.accountability.staff import staff_views
from emergency.accountability.tally import TALLY, counts_view
from emergency.alerts.ack_tally import unacknowledged
from emergency.directory.models import Room, room_label
from emergency.directory.principal import Principal
from emergency.errors import Forbidden
from emergency.runs.models import Run
from emergency.runs.partners import rollup_for_partner
from emergency.runs.service import get_run
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)


_ROLLUP_SCHEMA = RollupSchema()


def _seconds(run: Run, at: datetime | None) -> float | None:
    return None if at is None else round((at - run.started_at).total_seconds(), 3)


def rollup(session: Session, principal: Principal, run_id: int) -> dict:
    """The live roll-up of a run: expected and reported rooms, totals, who needs help, figures."""
    run = get_run(session, principal, run_id)
    names = may_read_names(principal, run)
    view, names_shown = _rollup_view(session, run, names)
    log_name_read(principal, run, names_shown)
    view["elapsed_seconds"] = _seconds(run, run.ended_at or utcnow())
    return rollup_for_partner(view) if principal.is_partner else view


def rollup_json(session: Session, principal: Principal, run_id: int, cache: RollupCache) -> bytes:
    """The roll-up as its JSON body, built once per run version and audience (see accountability.cache)."""
    run = get_run(session, principal, run_id)
    names = may_read_names(principal, run)
    audience = "partner" if principal.is_partner else "staff"
    entry = cache.get((run.id, run.last_seq, names, audience),
                      lambda: _serialised_rollup(session, run, names, partner=principal.is_partner))
    log_name_read(principal, run, entry.meta)
    # The one field that moves with the clock, not with the run: spliced in, never cached.
    elapsed = json.dumps(_seconds(run, run.ended_at or utcnow())).encode()
    return b'{"elapsed_seconds": ' + elapsed + b", " + entry.body[1:]


def _serialised_rollup(session: Session, run: Run, names: bool, *, partner: bool) -> tuple[bytes, bool]:
    view, names_shown = _rollup_view(session, run, names)
    shown = rollup_for_partner(view) if partner else _ROLLUP_SCHEMA.dump(view)
    return json.dumps(shown, separators=(",", ":")).encode(), names_shown


def _rollup_view(session: Session, run: Run, names: bool) -> tuple[dict, bool]:
    """The roll-up without elapsed_seconds, and whether it shows any student name."""
    expected_rooms = session.execute(select(Room.id, Room.number, Room.name).where(must_report(run.school_id))
                                     .order_by(Room.number)).all()
    expected_ids = {room.id for room in expected_rooms}
    counts = counts_view(session.execute(TALLY, {"run_id": run.id}).one_or_none(), len(expected_ids))
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
        "unreported_rooms": [room_ref(r) for r in unreported],
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
    expected = session.scalar(select(func.count()).select_from(Room).where(must_report(run.school_id))) or 0
    firsts = list(session.scalars(select(RoomStatus.first_reported_at).join(Room, Room.id == RoomStatus.room_id)
                                  .where(RoomStatus.run_id == run.id, must_report(run.school_id))
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
