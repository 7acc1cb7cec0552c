"""Before the all-clear: what is still open; a report of nobody must be said on purpose; triage order."""

from __future__ import annotations

from tests.accountability.test_checkins import World, world_fixture  # noqa: F401  (the `world` fixture)


def open_items(world: World, run_id: int, who=None):
    return world.client.get(f"/api/v1/runs/{run_id}/open-items", headers=world.h(who or world.principal))


def test_open_items_list_unreported_rooms_missing_students_help_and_unacknowledged_staff(world):
    run_id = world.start()
    world.check_in(run_id, status="students_missing", present=21, missing=1, missing_students=["Ana B"])
    world.check_in(run_id, who=world.teacher2, status="need_help", present=12, injured=1, injured_students=["Cy D"])
    world.client.post(f"/api/v1/runs/{run_id}/ack", json={}, headers=world.h(world.teacher))

    response = open_items(world, run_id)

    assert response.status_code == 200
    body = response.get_json()
    assert body["anything_open"] is True
    assert [room["number"] for room in body["unreported_rooms"]] == ["300"]  # the counsellor's home room
    assert (body["missing"], body["injured"]) == (1, 1)
    assert [r["missing_students"] for r in body["rooms_with_missing"]] == [["Ana B"]]
    assert [r["room"]["number"] for r in body["rooms_needing_help"]] == ["205"]
    assert [r["injured_students"] for r in body["rooms_with_injured"]] == [["Cy D"]]
    unacknowledged = {who["name"] for who in body["unacknowledged"]}
    assert "Tess Teacher" not in unacknowledged and "Theo Teacher" in unacknowledged
    assert all(set(who) == {"kind", "id", "name"} for who in body["unacknowledged"])  # never a phone number


def test_nothing_open_once_every_room_is_accounted_and_everyone_confirmed(world):
    run_id = world.start()
    for who in (world.teacher, world.teacher2, world.counsellor):
        assert world.check_in(run_id, who=who, status="all_accounted", present=5).status_code == 201
    asked = open_items(world, run_id).get_json()["unacknowledged"]
    people = {p.name: p for p in (world.principal, world.teacher, world.teacher2, world.counsellor, world.nurse)}
    for who in asked:
        world.client.post(f"/api/v1/runs/{run_id}/ack", json={}, headers=world.h(people[who["name"]]))

    body = open_items(world, run_id).get_json()

    assert body["anything_open"] is False and body["unacknowledged"] == [] and body["unreported_rooms"] == []


def test_open_items_are_for_the_schools_admins(world):
    run_id = world.start()
    assert open_items(world, run_id, world.teacher).status_code == 403
    assert open_items(world, run_id, world.partner).status_code == 403
    assert open_items(world, run_id, world.outsider).status_code == 404
    assert open_items(world, run_id, world.district).status_code == 200


def test_a_report_of_nobody_needs_room_empty(world):
    run_id = world.start()

    refused = world.check_in(run_id, status="all_accounted")
    assert refused.status_code == 422
    assert "room_empty" in refused.get_json()["message"] and "present" in refused.get_json()["errors"]
    empty = world.check_in(run_id, status="all_accounted", room_empty=True)
    assert empty.status_code == 201 and empty.get_json()["present"] == 0
    contradiction = world.check_in(run_id, status="all_accounted", present=3, room_empty=True)
    assert contradiction.status_code == 422 and "room_empty" in contradiction.get_json()["errors"]


def test_a_missing_or_injured_student_is_never_accounted_in_the_roll_up(world):
    run_id = world.start()
    world.check_in(run_id, status="all_accounted", present=22, injured=1)
    world.check_in(run_id, who=world.teacher2, status="students_missing", present=10, missing=1)
    world.check_in(run_id, who=world.counsellor, status="all_accounted", present=3)
    world.check_in(run_id, who=world.nurse, room_id=world.gym.id, status="need_help", present=1)

    rooms = {r["room"]["number"]: r["attention"] for r in world.rollup(run_id).get_json()["rooms"]}

    assert rooms == {"204": "injured", "205": "missing", "300": "accounted", "GYM": "need_help"}
