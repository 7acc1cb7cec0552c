"""The roll-up: expected rooms, arithmetic (extra students included), who sees names, figures and curve."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import event

from emergency.accountability import rollup, tally
from emergency.db import db
from emergency.runs.models import Run
from tests.accountability.test_checkins import GOOD, world_fixture  # noqa: F401


def test_expected_rooms_are_classrooms_with_capacity_and_home_rooms(world):
    run_id = world.start()

    body = world.rollup(run_id).get_json()

    # 204 and 205 are classrooms; 300 is an office but someone's home room; the gym and the closet are not.
    assert [r["number"] for r in body["unreported_rooms"]] == ["204", "205", "300"]
    assert body["expected"] == 3 and body["reported"] == 0 and body["percent_reported"] == 0.0
    assert "home room" in body["expected_rule"]
    assert body["fully_accounted_at"] is None


def test_totals_add_up_with_extra_students_reported_in_two_rooms(world):
    run_id = world.start()
    # Two students of 205 sheltered in 204: 204 reports them as extra, 205 reports them missing.
    world.check_in(run_id, status="all_accounted", present=24, absent=1, injured=1, extra=2)
    world.check_in(run_id, who=world.teacher2, status="students_missing", present=18, missing=2, absent=3)
    world.check_in(run_id, who=world.nurse, room_id=world.gym.id, status="need_help", present=5, injured=2)

    body = world.rollup(run_id).get_json()

    assert body["totals"] == {"present": 47, "absent": 4, "missing": 2, "injured": 3, "extra": 2}
    assert body["reported"] == 2 and body["reported_rooms"] == 3
    assert body["percent_reported"] == 66.7
    assert [r["number"] for r in body["unreported_rooms"]] == ["300"]
    assert [r["room"]["number"] for r in body["need_help"]] == ["GYM"]
    gym = next(r for r in body["rooms"] if r["room"]["number"] == "GYM")
    assert gym["expected"] is False and gym["reporter"]["name"] == "Nina Nurse" and gym["reported_at"]


def test_fully_accounted_at_is_the_first_moment_every_expected_room_had_reported(world, session):
    run_id = world.start()
    world.check_in(run_id, **GOOD)
    world.check_in(run_id, who=world.teacher2, **GOOD)
    assert world.rollup(run_id).get_json()["fully_accounted_at"] is None

    last = world.check_in(run_id, who=world.counsellor, **GOOD).get_json()
    world.check_in(run_id, **GOOD)  # a later update of 204 does not move the moment

    body = world.rollup(run_id).get_json()
    assert body["fully_accounted_at"] == last["reported_at"]
    assert body["percent_reported"] == 100.0 and body["unreported_rooms"] == []
    assert body["seconds_to_fully_accounted"] >= 0
    assert body["figures"]["seconds_to_100_percent"] == body["seconds_to_fully_accounted"]
    assert tally.counts_for_run(session, session.get(Run, run_id))["fully_accounted_at"] == last["reported_at"]


def test_run_view_carries_the_counts(world):
    run_id = world.start()
    world.check_in(run_id, status="students_missing", present=20, missing=1)

    run = world.client.get(f"/api/v1/runs/{run_id}", headers=world.h(world.teacher)).get_json()

    counts = run["counts"]["accountability"]
    assert counts["expected"] == 3 and counts["reported"] == 1 and counts["missing"] == 1
    assert counts["percent"] == 33.3 and counts["need_help"] == 0


def test_names_are_shown_to_admins_and_to_partners_only_as_the_playbook_allows(world, session, caplog):
    """docs/privacy.md: partners (real runs) get counts, and the names of missing students only when the
    playbook says `accountability.partner_missing_names`; never injured students' names, never the note."""
    caplog.set_level(logging.DEBUG)
    run_id = world.start(mode="real")
    world.check_in(run_id, status="students_missing", present=20, missing=1, injured=1,
                   missing_students=["Zed Zebra"], injured_students=["Yan Yak"], note="Zed left with Yan")

    by_role = {who.name: world.rollup(run_id, who=who).get_json()
               for who in (world.principal, world.district, world.partner, world.teacher2)}

    for name in ("Pat Principal", "Dana District"):
        room = by_role[name]["rooms"][0]
        assert room["missing_students"] == ["Zed Zebra"] and room["injured_students"] == ["Yan Yak"], name
        assert room["note"] == "Zed left with Yan"
    for name in ("Officer Obi", "Theo Teacher"):
        assert "Zed" not in repr(by_role[name]) and "Yan" not in repr(by_role[name]), name
    assert by_role["Officer Obi"]["rooms"][0]["missing"] == 1, "partners get the counts"
    assert by_role["Officer Obi"]["names_included"] is False

    stored = session.get(Run, run_id)
    stored.playbook = {**stored.playbook, "accountability": {**stored.playbook.get("accountability", {}),
                                                             "partner_missing_names": True}}
    session.commit()
    for answer in (world.rollup(run_id, who=world.partner).get_json()["rooms"][0],
                   world.client.get(f"/api/v1/runs/{run_id}/checkins", headers=world.h(world.partner))
                   .get_json()["checkins"][0]):
        assert answer["missing_students"] == ["Zed Zebra"]
        assert "injured_students" not in answer and "note" not in answer and "Yan" not in repr(answer)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Zed" not in logged and "Yan" not in logged
    assert "student names of run" in logged  # who read them is logged, the names are not


def test_partner_cannot_read_the_rollup_of_a_drill(world):
    run_id = world.start()

    assert world.rollup(run_id, who=world.partner).status_code == 404


def test_teacher_of_another_school_gets_404(world):
    run_id = world.start()

    assert world.rollup(run_id, who=world.outsider).status_code == 404


def test_partner_copy_of_pushes_has_no_names(world, pushes):
    run_id = world.start(mode="real")
    world.check_in(run_id, status="students_missing", present=20, missing=1, missing_students=["Zed Zebra"])

    partner_copies = [p.partner_data for p in pushes.pushes if p.partner_data is not None]

    assert partner_copies
    assert all("Zed" not in repr(copy) for copy in partner_copies)


def test_rollup_query_count_does_not_grow_with_history(world, session):
    run_id = world.start()

    def queries_for_rollup() -> int:
        statements = []

        def count(*_args):
            statements.append(1)

        engine = db.engine()
        event.listen(engine, "before_cursor_execute", count)
        try:
            world.rollup(run_id)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    world.check_in(run_id, **GOOD)
    few = queries_for_rollup()
    for _ in range(10):
        world.check_in(run_id, **GOOD)
        world.check_in(run_id, who=world.teacher2, **GOOD)

    assert queries_for_rollup() == few


def test_figures_and_curve(world, session):
    run_id = world.start()
    run = session.get(Run, run_id)
    run.started_at = run.started_at - timedelta(minutes=2)
    session.commit()
    world.check_in(run_id, **GOOD)
    world.check_in(run_id, **GOOD)
    world.check_in(run_id, who=world.teacher2, **GOOD)

    figures = rollup.accountability_figures(session, run)
    points = rollup.curve(session, run)
    api = world.client.get(f"/api/v1/runs/{run_id}/accountability/curve", headers=world.h(world.principal))

    assert figures["expected"] == 3
    assert 119 < figures["seconds_to_first_checkin"] < 180
    assert figures["seconds_to_50_percent"] >= figures["seconds_to_first_checkin"]  # 2 of 3 rooms
    assert figures["seconds_to_90_percent"] is None and figures["seconds_to_100_percent"] is None
    assert [p["reported"] for p in points] == [1, 2]  # one point per room's first report
    assert points[0]["seconds"] == figures["seconds_to_first_checkin"]
    assert api.get_json()["points"] == points
    assert world.rollup(run_id).get_json()["figures"] == figures
