"""Check-ins through the API: validation of every field, supersede and history, permissions, replay."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, update

from emergency.accountability.models import Checkin, RoomStatus
from emergency.directory.models import Room

GOOD = {"status": "all_accounted", "present": 22}


class World:
    """A school with expected and other rooms, its staff, an outsider, a district admin and a partner."""

    def __init__(self, client, login, make_school, make_room, make_person, make_partner):
        self.client, self._login, self._headers = client, login, {}
        self.school = make_school(name="Port Chester Middle School")
        self.other_school = make_school(name="Other School")
        self.room = make_room(self.school, number="204", name="Science")
        self.room2 = make_room(self.school, number="205", name="")
        self.gym = make_room(self.school, number="GYM", name="Gym", kind="gym", capacity=400)
        self.office = make_room(self.school, number="300", name="Counselling", kind="office", capacity=None)
        self.closet = make_room(self.school, number="B01", name="Storage", kind="storage", capacity=0)
        self.foreign_room = make_room(self.other_school, number="101")
        self.principal = make_person("school_admin", [self.school], name="Pat Principal")
        self.teacher = make_person("teacher", [self.school], name="Tess Teacher", home_room_id=self.room.id)
        self.teacher2 = make_person("teacher", [self.school], name="Theo Teacher", home_room_id=self.room2.id)
        self.counsellor = make_person("staff", [self.school], name="Cory Counsellor", home_room_id=self.office.id)
        self.nurse = make_person("nurse", [self.school], name="Nina Nurse")
        self.outsider = make_person("teacher", [self.other_school], name="Olga Outsider",
                                    home_room_id=self.foreign_room.id)
        self.district = make_person("district_admin", [], name="Dana District")
        self.partner = make_partner([self.school], name="Officer Obi")

    def h(self, who) -> dict:
        """Authorization headers of `who`, logging in once."""
        if who.email not in self._headers:
            self._headers[who.email] = self._login(who)
        return self._headers[who.email]

    def start(self, mode: str = "drill", playbook: str = "lockdown", who=None) -> int:
        body = {"school_id": self.school.id, "playbook": playbook, "mode": mode}
        if mode == "real":
            body["confirm"] = True
        response = self.client.post("/api/v1/runs", json=body, headers=self.h(who or self.principal))
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def check_in(self, run_id: int, who=None, key: str | None = None, **body):
        headers = dict(self.h(who or self.teacher))
        if key:
            headers["Idempotency-Key"] = key
        return self.client.post(f"/api/v1/runs/{run_id}/checkins", json=body, headers=headers)

    def rollup(self, run_id: int, who=None):
        return self.client.get(f"/api/v1/runs/{run_id}/accountability", headers=self.h(who or self.principal))

    def all_clear(self, run_id: int) -> None:
        response = self.client.post(f"/api/v1/runs/{run_id}/all-clear", json={}, headers=self.h(self.principal))
        assert response.status_code == 200, response.get_json()


@pytest.fixture(name="world")
def world_fixture(client, login, make_school, make_room, make_person, make_partner) -> World:
    return World(client, login, make_school, make_room, make_person, make_partner)


def test_teacher_checks_in_their_home_room_by_default(world):
    run_id = world.start()

    response = world.check_in(run_id, status="all_accounted", present=22, absent=2, injured=1, extra=1)

    assert response.status_code == 201
    body = response.get_json()
    assert body["room"]["number"] == "204"
    assert (body["present"], body["absent"], body["missing"], body["injured"], body["extra"]) == (22, 2, 0, 1, 1)
    assert body["reporter"]["name"] == "Tess Teacher"
    assert body["late"] is False and body["latest"] is True and body["channel"] == "app"


def test_room_is_required_when_the_caller_has_no_home_room(world):
    run_id = world.start()

    response = world.check_in(run_id, who=world.nurse, **GOOD)

    assert response.status_code == 422
    assert "room_id" in response.get_json()["errors"]


def test_room_of_another_school_is_refused(world):
    run_id = world.start()

    response = world.check_in(run_id, room_id=world.foreign_room.id, **GOOD)

    assert response.status_code == 422
    assert response.get_json()["errors"] == {"room_id": ["not a room of Port Chester Middle School"]}
    assert world.check_in(run_id, room_id=987654, **GOOD).status_code == 422


INVALID = [
    ("present", -1), ("absent", -1), ("missing", -3), ("injured", -1), ("extra", -1),
    ("present", 5001), ("missing", 10**9), ("present", 2.5), ("present", "22"), ("present", True),
    ("present", None), ("room_id", "204"), ("room_id", 1.5),
    ("status", "fine"), ("status", None), ("location", "x" * 201), ("note", "x" * 1001),
    ("missing_students", "Ann"), ("missing_students", [""]), ("missing_students", ["x" * 101]),
    ("missing_students", [1]), ("injured_students", ["Ann"] * 201),
]


def test_every_field_is_validated(world):
    # One app for every case (a loop, not parametrize): building the app is most of a test's time.
    run_id = world.start()
    for field, value in INVALID:
        body = {"status": "students_missing", "present": 20, "missing": 5000, "injured": 5000, field: value}

        response = world.check_in(run_id, **body)

        assert response.status_code == 422, (field, value, response.get_json())
        assert list(response.get_json()["errors"]) == [field], (field, value)
    assert world.check_in(run_id, status="students_missing", present=20, missing=5000, injured=5000).status_code == 201


def test_status_is_required_and_unknown_fields_are_rejected(world):
    run_id = world.start()

    missing = world.check_in(run_id, present=3)
    unknown = world.check_in(run_id, colour="red", **GOOD)

    assert missing.get_json()["errors"] == {"status": ["Missing data for required field."]}
    assert unknown.status_code == 422 and unknown.get_json()["errors"] == {"colour": ["Unknown field."]}


CONTRADICTIONS = [
    ({"status": "all_accounted", "present": 20, "missing": 2}, "status", "nobody is missing"),
    ({"status": "students_missing", "present": 20, "missing": 0}, "status", "missing count above 0"),
    ({"status": "students_missing", "present": 20, "missing": 1, "missing_students": ["Ann A", "Bob B"]},
     "missing_students", "2 names given but missing is 1"),
    ({"status": "all_accounted", "present": 20, "injured": 0, "injured_students": ["Ann A"]},
     "injured_students", "1 names given but injured is 0"),
]


def test_status_that_contradicts_the_counts_is_refused_clearly(world):
    run_id = world.start()
    for body, field, words in CONTRADICTIONS:
        response = world.check_in(run_id, **body)

        assert response.status_code == 422, body
        assert field in response.get_json()["errors"], body
        assert words in response.get_json()["message"], body
        assert "Ann" not in response.get_json()["message"]


def test_need_help_accepts_any_counts(world):
    run_id = world.start()

    assert world.check_in(run_id, status="need_help", present=0).status_code == 201
    assert world.check_in(run_id, status="need_help", present=20, missing=3).status_code == 201


def test_location_is_a_room_of_the_school_or_an_assembly_point(world):
    lockdown = world.start()
    assert world.check_in(lockdown, location="gym", **GOOD).get_json()["location"] == "GYM Gym"
    assert world.check_in(lockdown, location="North field (primary)", **GOOD).status_code == 422
    world.all_clear(lockdown)

    evacuation = world.start(playbook="evacuate")
    ok = world.check_in(evacuation, location="north field (PRIMARY)", **GOOD)
    refused = world.check_in(evacuation, location="204", **GOOD)

    assert ok.get_json()["location"] == "North field (primary)"
    assert refused.status_code == 422
    assert "North field (primary)" in refused.get_json()["message"]


def test_later_check_in_replaces_the_earlier_one_and_history_is_kept(world, session):
    run_id = world.start()
    first = world.check_in(run_id, status="students_missing", present=20, missing=2).get_json()
    second = world.check_in(run_id, **GOOD).get_json()

    rows = session.scalars(select(Checkin).where(Checkin.run_id == run_id).order_by(Checkin.id)).all()
    latest = session.get(RoomStatus, (run_id, world.room.id))
    history = world.client.get(f"/api/v1/runs/{run_id}/checkins", headers=world.h(world.principal)).get_json()

    assert [r.id for r in rows] == [first["id"], second["id"]]
    assert rows[0].superseded_by_id == second["id"] and rows[1].superseded_by_id is None
    assert (latest.checkin_id, latest.status, latest.missing, latest.reports) == (second["id"], "all_accounted", 0, 2)
    assert [c["id"] for c in history["checkins"]] == [second["id"], first["id"]]
    assert [c["latest"] for c in history["checkins"]] == [True, False]
    rollup = world.rollup(run_id).get_json()
    assert rollup["totals"]["missing"] == 0 and rollup["totals"]["present"] == 22


def test_staff_and_admins_of_the_school_may_check_in(world):
    run_id = world.start()

    for who in (world.teacher2, world.principal, world.district, world.nurse):
        response = world.check_in(run_id, who=who, room_id=world.room2.id, **GOOD)
        assert response.status_code == 201, (who.name, response.get_json())


def test_partner_may_not_check_in_and_an_outsider_does_not_see_the_run(world):
    drill = world.start()
    world.all_clear(drill)
    real = world.start(mode="real")

    partner = world.check_in(real, who=world.partner, room_id=world.room.id, **GOOD)
    outsider = world.check_in(real, who=world.outsider, room_id=world.room.id, **GOOD)

    assert partner.status_code == 403
    assert outsider.status_code == 404
    assert world.check_in(drill, who=world.partner, room_id=world.room.id, **GOOD).status_code == 403


def test_check_in_after_the_end_is_accepted_and_marked_late(world):
    run_id = world.start()
    world.all_clear(run_id)

    response = world.check_in(run_id, **GOOD)

    assert response.status_code == 201
    assert response.get_json()["late"] is True
    assert world.rollup(run_id).get_json()["rooms"][0]["late"] is True


def test_idempotent_replay_is_recorded_once(world, session, pushes):
    run_id = world.start()

    first = world.check_in(run_id, key="offline-1", **GOOD)
    replay = world.check_in(run_id, key="offline-1", **GOOD)

    assert first.status_code == 201 and replay.status_code == 200
    assert replay.get_json()["id"] == first.get_json()["id"]
    assert len(session.scalars(select(Checkin).where(Checkin.run_id == run_id)).all()) == 1
    assert pushes.names().count("checkin.recorded") == 1


def test_a_replay_is_answered_with_what_was_recorded_even_if_the_room_has_moved_since(world, session):
    run_id = world.start()
    first = world.check_in(run_id, key="offline-2", room_id=world.room2.id, **GOOD)
    # The directory changed before the phone's replay.
    session.execute(update(Room).where(Room.id == world.room2.id).values(school_id=world.other_school.id))
    session.commit()

    replay = world.check_in(run_id, key="offline-2", room_id=world.room2.id, **GOOD)

    assert first.status_code == 201 and replay.status_code == 200
    assert replay.get_json()["id"] == first.get_json()["id"]
    assert world.check_in(run_id, key="new-key", room_id=world.room2.id, **GOOD).status_code == 422


def test_idempotency_key_of_someone_else_is_a_conflict(world):
    run_id = world.start()
    world.check_in(run_id, key="k", **GOOD)

    response = world.check_in(run_id, who=world.teacher2, key="k", **GOOD)

    assert response.status_code == 409


def test_idempotency_key_is_per_run(world):
    first_run = world.start()
    world.check_in(first_run, key="k", **GOOD)
    world.all_clear(first_run)
    second_run = world.start()

    assert world.check_in(second_run, key="k", **GOOD).status_code == 201


def test_check_in_pushes_the_event_and_the_updated_rollup_without_names(world, pushes):
    run_id = world.start(mode="real")

    world.check_in(run_id, status="students_missing", present=20, missing=1, missing_students=["Zed Zebra"],
                   note="Zed Zebra went to the office")

    names = pushes.names()
    assert "checkin.recorded" in names and "accountability.updated" in names
    recorded = next(p for p in pushes.pushes if p.name == "checkin.recorded")
    updated = next(p for p in pushes.pushes if p.name == "accountability.updated")
    assert recorded.data["payload"]["missing"] == 1
    assert updated.data["payload"]["missing"] == 1 and updated.data["payload"]["reported"] == 1
    for push in pushes.pushes:
        assert "Zed" not in repr(push.data) and "Zed" not in repr(push.partner_data)
    assert recorded.partner_data is not None


def test_names_appear_only_for_admins_in_the_check_in_response(world):
    run_id = world.start()

    body = dict(status="students_missing", present=20, missing=1, missing_students=["Zed Zebra"])
    as_teacher = world.check_in(run_id, **body).get_json()
    as_principal = world.check_in(run_id, who=world.principal, room_id=world.room2.id, **body).get_json()

    assert "missing_students" not in as_teacher
    assert as_principal["missing_students"] == ["Zed Zebra"]


def test_a_check_in_is_three_statements_and_no_transaction_round_trips_on_postgresql(app, world, session):
    """The path every room of a school takes at once: the token, the run with the room, then the one
    statement that writes it all. All of them autocommitted on one connection: no BEGIN or COMMIT
    round trips, and the connection is not given back and taken again between the reads and the write."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL: SQLite runs each write in a transaction holding the write lock")
    run_id = world.start()
    world.h(world.teacher)  # logged in before counting
    seen: list[tuple[str, bool]] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        seen.append((" ".join(statement.split()[:2]), conn.connection.driver_connection.autocommit))

    checkouts: list[object] = []

    def checked_out(dbapi_connection, record, proxy):
        checkouts.append(dbapi_connection)

    engine = app.extensions["db"]["engine"]
    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine.pool, "checkout", checked_out)
    try:
        response = world.check_in(run_id, **GOOD)
    finally:
        event.remove(engine, "before_cursor_execute", note)
        event.remove(engine.pool, "checkout", checked_out)

    assert response.status_code == 201, response.get_json()
    assert [s for s, _ in seen] == ["SELECT auth_tokens.expires_at,", "SELECT runs.id,", 'WITH "new"'], seen
    assert all(autocommit for _, autocommit in seen), seen
    assert len(checkouts) == 1, checkouts
