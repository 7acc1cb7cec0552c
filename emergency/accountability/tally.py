"""The run's tally: one row per run, moved by each check-in's difference, so the numbers cost the same for
the 60th room as for the first."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

from sqlalchemy import (
    bindparam,
    case,
    select,
)
from sqlalchemy.orm import Session

from emergency.accountability.models import (
    COUNT_FIELDS,
    RunTally,
)
from emergency.accountability.rooms import expected_room_count
from emergency.db import backend, upsert
from emergency.runs.models import Run
from emergency.timeutil import iso

log = logging.getLogger(__name__)


TALLY_COUNTERS = ("reported", "reported_rooms", *COUNT_FIELDS, "need_help")


# Built once: constructing a statement costs more Python than running it.
TALLY = select(*RunTally.__table__.c).where(RunTally.run_id == bindparam("run_id"))


def counts_for_run(session: Session, run: Run) -> dict:
    """The run's accountability in numbers: expected, reported, percent, totals, need_help, fully_accounted_at."""
    tally = session.execute(TALLY, {"run_id": run.id}).one_or_none()
    return counts_view(tally, expected_room_count(session, run.school_id))


def move_tally(session: Session, run: Run, change: dict, *, first_expected_at: datetime | None):
    """Add a check-in's difference to the run's tally (created by the first check-in); returns the new tally."""
    statement = _tally_upsert(backend(session))
    return session.execute(statement, {"run_id": run.id, "last_expected_first_at": first_expected_at,
                                       **{name: change[name] for name in TALLY_COUNTERS}}).one()


@cache
def _tally_upsert(database: str):
    """INSERT a tally or add to the existing one, returning it (built once per database)."""
    return adding_to_tally(upsert(database, RunTally.__table__))


def adding_to_tally(statement):
    """An INSERT into the tallies that adds to the run's row when there is one, returning the row."""
    tallies = RunTally.__table__
    new, old = statement.excluded.last_expected_first_at, tallies.c.last_expected_first_at
    return statement.on_conflict_do_update(index_elements=[tallies.c.run_id], set_={
        **{name: tallies.c[name] + statement.excluded[name] for name in TALLY_COUNTERS},
        # The later of the two: concurrent check-ins may commit out of the order of their clocks.
        "last_expected_first_at": case((new.is_(None), old), (old.is_(None), new), (new > old, new), else_=old),
    }).returning(*tallies.c)


def counts_view(tally, expected: int) -> dict:
    """The numbers of a tally row (None before the first check-in) against the expected rooms."""
    reported = tally.reported if tally else 0
    fully = tally.last_expected_first_at if tally and expected and reported >= expected else None
    return {
        "expected": expected, "reported": reported, "reported_rooms": tally.reported_rooms if tally else 0,
        "percent": round(100.0 * reported / expected, 1) if expected else 0.0,
        **{name: getattr(tally, name) if tally else 0 for name in COUNT_FIELDS},
        "need_help": tally.need_help if tally else 0, "fully_accounted_at": iso(fully),
    }
