"""The run's tally: moved by each check-in's difference, equal to adding up the rooms, applied exactly once."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import case, create_engine, func, select, text

from emergency.accountability import checkins, tally
from emergency.accountability.models import COUNT_FIELDS, NEED_HELP, Checkin, RoomStatus
from emergency.alerts.setup import periodic_jobs
from emergency.runs.models import Run, RunEvent
from emergency.timeutil import utcnow
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


def test_a_check_in_stored_but_not_tallied_is_applied_once_by_the_periodic_job(world, session, pushes):
    """An earlier version stored a report and tallied it in a second step; a report its process left
    between the two (upgraded mid-drill) is applied by the dispatcher's periodic job, once."""
    if not _is_postgres(session):
        pytest.skip("only PostgreSQL ever tallied in a second step")
    run_id = world.start()
    now = utcnow()
    stored = Checkin(run_id=run_id, room_id=world.room.id, person_id=world.teacher.id, reporter_name="Tess Teacher",
                     channel="app", status="students_missing", present=20, missing=2, created_at=now,
                     tallied_at=None)
    session.add(stored)
    session.flush()
    session.add(RoomStatus(run_id=run_id, room_id=world.room.id, checkin_id=stored.id, status="students_missing",
                           present=20, absent=0, missing=2, injured=0, extra=0, reports=1, first_reported_at=now,
                           reported_at=now))
    session.commit()

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


def test_reports_at_the_same_moment_keep_the_tally_the_history_and_the_timeline_in_one_order(
        app, world, session):
    """Six phones report four rooms at once, eight times each. Afterwards, as after any order of
    reports: the tally adds up the rooms, each room's reports form one supersede chain ending at its
    latest status, and the timeline tells the same story in the same order."""
    run_id = world.start()
    rooms = [world.room, world.room2, world.gym, world.office]
    headers = world.h(world.principal)
    start = threading.Barrier(6)
    failures: list = []

    def phone(n: int) -> None:
        client, randomly = app.test_client(), random.Random(n)
        start.wait()
        for _ in range(8):
            missing = randomly.choice([0, 1, 2])
            status = randomly.choice([NEED_HELP, "students_missing" if missing else "all_accounted"])
            response = client.post(f"/api/v1/runs/{run_id}/checkins", headers=headers, json={
                "room_id": randomly.choice(rooms).id, "status": status, "present": randomly.randint(1, 30),
                "absent": randomly.randint(0, 3), "missing": missing, "injured": randomly.choice([0, 1]),
                "extra": randomly.randint(0, 2)})
            if response.status_code != 201:
                failures.append(response.get_json())

    threads = [threading.Thread(target=phone, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    session.rollback()

    assert tallied(session, run_id) == added_up(session, run_id)
    reports = list(session.scalars(select(Checkin).where(Checkin.run_id == run_id).order_by(Checkin.id)))
    assert len(reports) == 48
    latest = {s.room_id: s for s in session.scalars(select(RoomStatus).where(RoomStatus.run_id == run_id))}
    events = sorted(_checkin_events(session, run_id), key=lambda e: e.seq)
    assert sorted(e.payload["checkin_id"] for e in events) == [r.id for r in reports]
    for room in rooms:
        of_room = [r for r in reports if r.room_id == room.id]
        if not of_room:
            continue
        # One chain: every report but the latest is superseded by exactly one later report of the room.
        by_id = {r.id: r for r in of_room}
        assert [r.id for r in of_room if r.superseded_by_id is None] == [latest[room.id].checkin_id]
        assert len({r.superseded_by_id for r in of_room}) == len(of_room)
        assert latest[room.id].reports == len(of_room)
        # The timeline, in seq order, is that chain from its start: each event supersedes the one before.
        told = [e.payload for e in events if e.payload["room"]["id"] == room.id]
        assert [p["supersedes"] for p in told] == [None] + [p["checkin_id"] for p in told[:-1]]
        assert told[-1]["checkin_id"] == latest[room.id].checkin_id
        assert all(by_id[p["supersedes"]].superseded_by_id == p["checkin_id"] for p in told[1:])
        assert {p["status"] for p in told[-1:]} == {latest[room.id].status}


def test_a_report_committed_while_the_next_one_waits_for_the_room_is_still_linked_to_it(app, world, session,
                                                                                         database_url):
    """The check-in statement's snapshot predates a report committed while it waited for the room's
    lock: its UPDATE cannot see that report's row to link it, so a second statement does."""
    if not _is_postgres(session):
        pytest.skip("PostgreSQL: SQLite runs one writer at a time")
    run_id = world.start()
    first = world.check_in(run_id, status="all_accounted", present=20).get_json()["id"]
    session.rollback()
    other = create_engine(database_url)
    try:
        with other.connect() as connection:
            # Another request's report, written and holding the room's row until it commits.
            between = connection.execute(text(
                "INSERT INTO checkins (run_id, room_id, person_id, reporter_name, channel, status, present, absent,"
                " missing, injured, extra, late, created_at, tallied_at) SELECT run_id, room_id, person_id,"
                " reporter_name, channel, status, present, absent, missing, injured, extra, late, created_at,"
                " created_at FROM checkins WHERE id = :first RETURNING id"), {"first": first}).scalar_one()
            connection.execute(text("UPDATE checkins SET superseded_by_id = :between WHERE id = :first"),
                               {"between": between, "first": first})
            connection.execute(text(
                "UPDATE room_statuses SET checkin_id = :between, previous_checkin_id = :first, reports = reports + 1,"
                " previous_status = status, previous_present = present, previous_absent = absent,"
                " previous_missing = missing, previous_injured = injured, previous_extra = extra"
                " WHERE run_id = :run AND room_id = :room"),
                {"between": between, "first": first, "run": run_id, "room": world.room.id})
            answers = []
            reporting = threading.Thread(target=lambda: answers.append(world.check_in(
                run_id, status="students_missing", present=19, missing=1)))
            reporting.start()
            deadline = time.monotonic() + 10
            with other.connect() as watcher:
                while not watcher.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'")).scalar_one() and time.monotonic() < deadline:
                    time.sleep(0.02)
            connection.commit()
            reporting.join(10)
    finally:
        other.dispose()

    assert answers and answers[0].status_code == 201, answers
    last = answers[0].get_json()["id"]
    session.rollback()
    assert session.get(Checkin, between).superseded_by_id == last
    latest = session.scalar(select(RoomStatus).where(RoomStatus.run_id == run_id, RoomStatus.room_id == world.room.id))
    assert (latest.checkin_id, latest.previous_checkin_id, latest.reports) == (last, between, 3)
    assert _checkin_events(session, run_id)[-1].payload["supersedes"] == between
    assert tallied(session, run_id) == added_up(session, run_id)
