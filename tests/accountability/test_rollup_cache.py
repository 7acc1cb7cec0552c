"""One roll-up read for many phones: built once per run version and audience, correct across processes."""

from __future__ import annotations

import logging

from emergency.accountability.cache import RollupCache
from emergency.app import create_app
from tests.accountability.test_checkins import GOOD, world_fixture  # noqa: F401


def _cache(app) -> RollupCache:
    return app.extensions["rollup_cache"]


def _without_clock(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "elapsed_seconds"}


def test_many_reads_of_an_unchanged_run_build_the_roll_up_once(app, world):
    run_id = world.start()
    world.check_in(run_id, **GOOD)
    before = _cache(app).builds

    bodies = [world.rollup(run_id).get_json() for _ in range(5)]

    assert _cache(app).builds == before + 1
    assert all(_without_clock(b) == _without_clock(bodies[0]) for b in bodies)
    assert bodies[0]["reported"] == 1 and isinstance(bodies[0]["elapsed_seconds"], float)


def test_a_check_in_shows_at_the_next_read(app, world):
    run_id = world.start()
    assert world.rollup(run_id).get_json()["reported"] == 0

    world.check_in(run_id, **GOOD)

    assert world.rollup(run_id).get_json()["reported"] == 1


def test_a_change_made_by_another_process_shows_at_once(app, world, make_config):
    run_id = world.start()
    assert world.rollup(run_id).get_json()["reported"] == 0
    other = create_app(make_config())  # another instance on the same database, with its own cache
    headers = world.h(world.teacher)

    with other.test_client() as other_client:
        response = other_client.post(f"/api/v1/runs/{run_id}/checkins", json=GOOD, headers=headers)
        assert response.status_code == 201

    assert world.rollup(run_id).get_json()["reported"] == 1


def test_readers_without_names_never_get_the_cached_roll_up_with_names(world):
    run_id = world.start()
    world.check_in(run_id, status="students_missing", present=20, missing=1, missing_students=["Zed Zebra"])

    admin = world.rollup(run_id, who=world.principal).get_json()
    teacher = world.rollup(run_id, who=world.teacher).get_json()

    assert admin["rooms"][0]["missing_students"] == ["Zed Zebra"] and admin["names_included"] is True
    assert "missing_students" not in teacher["rooms"][0] and teacher["names_included"] is False


def test_every_read_of_names_is_logged_even_from_the_cache(world, caplog):
    run_id = world.start()
    world.check_in(run_id, status="students_missing", present=20, missing=1, missing_students=["Zed Zebra"])
    caplog.set_level(logging.INFO, logger="emergency.accountability.checkins")

    world.rollup(run_id)
    world.rollup(run_id)

    reads = [r for r in caplog.records if "student names of run" in r.getMessage()]
    assert len(reads) == 2


def test_the_staff_needing_help_show_at_the_next_read(world):
    run_id = world.start()
    world.rollup(run_id)
    response = world.client.post(f"/api/v1/runs/{run_id}/status", json={"status": "need_help"},
                                 headers=world.h(world.teacher))
    assert response.status_code == 200

    assert [s["person"]["name"] for s in world.rollup(run_id).get_json()["staff_needing_help"]] == ["Tess Teacher"]


def test_an_entry_is_reused_only_for_its_max_age():
    now = [0.0]
    cache = RollupCache(5.0, clock=lambda: now[0])
    built = []

    def build():
        built.append(now[0])
        return b"{}", None

    cache.get("k", build)
    now[0] = 4.9
    cache.get("k", build)
    now[0] = 5.1  # a directory edit moves no run version: it shows after max_age at the latest
    cache.get("k", build)

    assert built == [0.0, 5.1]


def test_max_age_zero_turns_the_cache_off():
    cache = RollupCache(0)
    for _ in range(3):
        cache.get("k", lambda: (b"{}", None))
    assert cache.builds == 3


def test_the_cache_keeps_a_bounded_number_of_entries():
    cache = RollupCache(60.0, max_entries=2)
    for key in ("a", "b", "c"):
        cache.get(key, lambda: (b"{}", None))
    cache.get("a", lambda: (b"{}", None))
    assert cache.builds == 4
