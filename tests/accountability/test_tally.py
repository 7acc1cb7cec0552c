"""The run's tally: moved by each check-in's difference, equal to adding up the rooms, applied exactly once."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import case, func, select

from emergency.accountability import checkins, tally
from emergency.accountability.models import COUNT_FIELDS, NEED_HELP, Checkin, RoomStatus
from emergency.alerts.setup import periodic_jobs
from emergency.db import db
from emergency.runs.models import Run, RunEvent
from tests.accountability.test_checkins import GOOD, world_fixture  # noqa: F401


def added_up(session, run_id: int) -> dict:
    """The roll-up numbers the slow way: a sum over every room's latest report."""
    row = session.execute(select(func.count(), *(func.coalesce(func.sum(getattr(RoomStatus, n)), 0)
                                                 for n in COUNT_FIELDS),
                                 func.coalesce(func.sum(case((RoomStatus.status == NEED_HELP, 1), else_=0)), 0))
                          .where(RoomStatus.run_id == run_id)).one()
    return {"reported_rooms": row[0], **{n: int(row[1 + i]) for i, n in enumerate(COUNT_FIELDS)},
            "need_help": int(row[-1])}


def tallied(session, run_id: int) -> dict:
    counts = tally.counts_for_run(session, session.get(Run, run_id))
    return {key: counts[key] for key in ("reported_rooms", *COUNT_FIELDS, "need_help")}


def test_tally_equals_adding_up_the_rooms_after_every_check_in(world, session):
    run_id = world.start()
    randomly = random.Random(7)
    reporters = [(world.teacher, world.room), (world.teacher2, world.room2), (world.nurse, world.gym),
                 (world.counsellor, world.office)]
    for _ in range(40):
        who, room = randomly.choice(reporters)
        missing, injured = randomly.choice([0, 0, 1, 2]), randomly.choice([0, 0, 1])
        status = randomly.choice([NEED_HELP, "students_missing" if missing else "all_accounted"])
        response = world.check_in(run_id, who=who, room_id=room.id, status=status, present=randomly.randint(0, 30),
                                  absent=randomly.randint(0, 3), missing=missing, injured=injured,
                                  extra=randomly.randint(0, 2))
        assert response.status_code == 201, response.get_json()
        session.rollback()
        assert tallied(session, run_id) == added_up(session, run_id)
    assert tally.counts_for_run(session, session.get(Run, run_id))["reported"] == 3  # the gym is not expected


def test_the_dispatcher_applies_check_ins_left_untallied():
    assert checkins.apply_untallied in periodic_jobs()


def test_every_check_in_is_tallied_when_it_is_recorded(world, session):
    run_id = world.start()
    world.check_in(run_id, **GOOD)
    world.check_in(run_id, who=world.teacher2, **GOOD)
    session.rollback()

    assert session.scalar(select(func.count()).where(Checkin.tallied_at.is_(None))) == 0
    assert checkins.apply_untallied(session, older_than=timedelta(0)) == 0



def _is_postgres(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def test_a_check_in_stored_but_not_tallied_is_applied_once_by_the_periodic_job(world, session, pushes,
                                                                               monkeypatch):
    if not _is_postgres(session):
        pytest.skip("only PostgreSQL tallies in a second step")
    run_id = world.start()
    real_apply = checkins._apply

    def crash(*args, **kwargs):
        raise RuntimeError("the process stopped here")

    monkeypatch.setattr(checkins, "_apply", crash)
    assert world.check_in(run_id, status="students_missing", present=20, missing=2).status_code == 500
    monkeypatch.setattr(checkins, "_apply", real_apply)
    db.session.rollback()

    # The report is stored (the room shows it) but neither tallied nor on the timeline yet.
    assert added_up(session, run_id)["missing"] == 2
    assert tallied(session, run_id)["missing"] == 0
    assert not _checkin_events(session, run_id)
    assert checkins.apply_untallied(session, older_than=timedelta(hours=1)) == 0  # too recent to be left behind

    assert checkins.apply_untallied(session, older_than=timedelta(0)) == 1

    assert tallied(session, run_id) == added_up(session, run_id)
    assert [e.payload["missing"] for e in _checkin_events(session, run_id)] == [2]
    assert pushes.names()[-2:] == ["checkin.recorded", "accountability.updated"]
    assert checkins.apply_untallied(session, older_than=timedelta(0)) == 0
    assert len(_checkin_events(session, run_id)) == 1


def test_applying_a_tallied_check_in_again_changes_nothing(world, session):
    if not _is_postgres(session):
        pytest.skip("only PostgreSQL tallies in a second step")
    run_id = world.start()
    checkin_id = world.check_in(run_id, **GOOD).get_json()["id"]
    session.rollback()
    run = session.get(Run, run_id)
    before, last_seq = tallied(session, run_id), run.last_seq

    event = RunEvent(run_id=run_id, type="checkin.recorded", actor={}, payload={}, created_at=run.started_at)
    change = dict.fromkeys(("reported", "reported_rooms", *COUNT_FIELDS, "need_help"), 5)
    assert checkins._apply(session, run, checkin_id, change, event, autocommit=False, first_expected_at=None) is None
    session.commit()

    assert tallied(session, run_id) == before
    assert session.scalar(select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id)) == last_seq


def _checkin_events(session, run_id: int) -> list[RunEvent]:
    return list(session.scalars(select(RunEvent).where(RunEvent.run_id == run_id,
                                                       RunEvent.type == "checkin.recorded")))
