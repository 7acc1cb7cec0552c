"""Student-level accountability through the API: expected rosters, check-in by student, the school's list."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from emergency.accountability.models import Checkin
from emergency.alerts.models import Alert
from emergency.roster.models import Enrollment, RosterClass, RunRoster, Student, StudentDataRead
from tests.roster.conftest import AT_LUNCH


def _names(district, ids) -> set[str]:
    students = district.session.scalars(select(Student).where(Student.id.in_(list(ids))))
    return {s.name for s in students}


def test_a_teacher_sees_the_class_they_teach_now_prefilled(district):
    run = district.start(district.g2)
    teacher = district.teacher("G2", 2)
    answer = district.get(f"/api/v1/runs/{run}/roster/room", teacher).get_json()

    assert answer["period"] == "2" and answer["day_type"] == "regular"
    assert answer["room"]["number"] == "102"
    assert len(answer["students"]) == 25 and answer["extras"] == []
    # The period-2 section in room 102, not the teacher's homeroom students.
    section = set(district.session.scalars(
        select(Enrollment.student_id).join(RosterClass, RosterClass.id == Enrollment.class_id)
        .where(RosterClass.sourced_id == "c-G2-2-p2", Enrollment.role == "student")))
    assert {s["id"] for s in answer["students"]} == section


def test_outside_class_time_the_homeroom_is_expected_and_unplaced_students_are_unknown(district, session):
    # A student in no class at all (enrolled after the export, say) is expected in an unknown room.
    loner = Student(sourced_id="s-new", school_id=district.g2.id, given_name="Nova", family_name="Alone")
    session.add(loner)
    session.commit()
    run = district.start(district.g2, at=AT_LUNCH)
    answer = district.get(f"/api/v1/runs/{run}/roster/room", district.teacher("G2", 1)).get_json()
    assert answer["period"] is None and len(answer["students"]) == 25
    assert {s["expected_room"]["number"] for s in answer["students"]} == {"101"}
    school = district.get(f"/api/v1/runs/{run}/roster", district.principal("G2")).get_json()
    assert school["counts"]["students"] == 101
    row = next(s for s in school["students"] if s["id"] == loner.id)
    assert row["expected_room_id"] is None and row["status"] == "not_reported" and loner.id in school["unaccounted"]
    # The run's list is fixed once worked out: a student added later is not in it.
    late = Student(sourced_id="s-later", school_id=district.g2.id, given_name="Lena", family_name="Late")
    session.add(late)
    session.commit()
    assert district.get(f"/api/v1/runs/{run}/roster", district.principal("G2")).get_json()["counts"]["students"] == 101
    assert session.get(RunRoster, (run, late.id)) is None


def test_elementary_homerooms_work_without_a_schedule(district):
    run = district.start(district.g1)
    answer = district.get(f"/api/v1/runs/{run}/roster/room", district.teacher("G1", 3)).get_json()
    assert answer["period"] is None and answer["room"]["number"] == "103" and len(answer["students"]) == 25


def test_done_when_a_missing_student_found_in_another_room_changes_the_principals_list_live(district, pushes):
    run = district.start(district.g2)
    principal, first, second = district.principal("G2"), district.teacher("G2", 1), district.teacher("G2", 2)
    before = district.get(f"/api/v1/runs/{run}/roster", principal).get_json()
    assert before["counts"] == {"students": 100, "present": 0, "injured": 0, "absent": 0, "missing": 0,
                                "not_reported": 100, "flagged": 0, "unaccounted": 100}

    roster = district.get(f"/api/v1/runs/{run}/roster/room", first).get_json()["students"]
    lost, absent, hurt = roster[0], roster[1], roster[2]
    response = district.check_in(run, first, exceptions=[
        {"student_id": lost["id"], "status": "missing"}, {"student_id": absent["id"], "status": "absent"},
        {"student_id": hurt["id"], "status": "injured"}])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["status"], body["present"], body["absent"], body["missing"], body["injured"], body["extra"]) == \
        ("students_missing", 23, 1, 1, 1, 0)

    middle = district.get(f"/api/v1/runs/{run}/roster", principal).get_json()
    assert middle["counts"]["missing"] == 1 and middle["counts"]["not_reported"] == 75
    assert [s["id"] for s in middle["students"] if s["status"] == "missing"] == [lost["id"]]
    assert lost["id"] in middle["unaccounted"] and len(middle["unaccounted"]) == 76

    # The other teacher finds the student in the hallway and reports them as with room 102.
    found = district.get(f"/api/v1/runs/{run}/roster/students", second,
                         q=lost["name"].split()[0][:3] + " " + lost["name"].split()[-1]).get_json()["students"]
    assert lost["id"] in [s["id"] for s in found]
    response = district.check_in(run, second, extras=[{"student_id": lost["id"], "status": "present"}])
    assert response.status_code == 201 and response.get_json()["extra"] == 1

    after = district.get(f"/api/v1/runs/{run}/roster", principal).get_json()
    assert after["counts"]["missing"] == 0 and after["counts"]["flagged"] == 1
    entry = next(s for s in after["students"] if s["id"] == lost["id"])
    rooms = {room["id"]: room for room in after["rooms"]}
    assert entry["status"] == "accounted" and rooms[entry["room_id"]]["number"] == "102" and entry["flagged"]
    assert rooms[entry["conflict_room_id"]] == {"id": entry["conflict_room_id"], "number": "101",
                                                "label": "101 Room 101"}
    assert entry["conflict_status"] == "missing" and after["flagged"] == [lost["id"]]
    assert lost["id"] not in after["unaccounted"]
    assert set(after["unaccounted"]) == {s["id"] for s in after["students"] if s["status"] == "not_reported"}
    # Live: each report pushed the new numbers to the school's staff, never to partners, without names.
    updates = [p for p in pushes.pushes if p.name == "roster.updated"]
    assert [u.data["payload"]["missing"] for u in updates] == [1, 0]
    assert all(u.partner_data is None for u in updates)
    assert updates[-1].data["payload"]["flagged"] == 1


def test_student_names_never_reach_pushes_timeline_alerts_or_logs(district, pushes, session, caplog):
    caplog.set_level(logging.DEBUG)
    run = district.start(district.g2, mode="real")
    teacher = district.teacher("G2", 1)
    roster = district.get(f"/api/v1/runs/{run}/roster/room", teacher).get_json()["students"]
    district.check_in(run, teacher, need_help=True, exceptions=[{"student_id": roster[0]["id"], "status": "missing"},
                                                                {"student_id": roster[1]["id"], "status": "injured"}])
    names = _names(district, [s["id"] for s in roster])
    family = {n.split()[-1] for n in names}
    pushed = json.dumps([[p.data, p.partner_data] for p in pushes.pushes])
    events = district.get(f"/api/v1/runs/{run}/timeline", district.principal("G2")).get_data(True)
    bodies = " ".join(a.body or "" for a in session.scalars(select(Alert)))
    for text in (pushed, events, bodies, caplog.text):
        assert not any(name in text for name in family), "a student name leaked"
    # The check-in itself keeps counts, not names.
    checkin = session.scalar(select(Checkin).where(Checkin.run_id == run))
    assert checkin.missing_students is None and checkin.injured_students is None


def test_who_sees_which_list(district, make_partner, make_person):
    run = district.start(district.g2)
    teacher, other = district.teacher("G2", 1), district.teacher("G2", 2)
    staff = make_person("staff", [district.g2])
    room_101 = district.room(district.g2, "101")
    assert district.get(f"/api/v1/runs/{run}/roster", teacher).status_code == 403
    assert district.get(f"/api/v1/runs/{run}/roster/room", other, room_id=room_101.id).status_code == 403
    assert district.get(f"/api/v1/runs/{run}/roster/room", staff, room_id=room_101.id).status_code == 403
    assert district.get(f"/api/v1/runs/{run}/roster/room", district.principal("G2"),
                        room_id=room_101.id).status_code == 200
    partner = make_partner([district.g2])
    assert district.get(f"/api/v1/runs/{run}/roster", partner).status_code == 404  # drills: never partners
    outsider = district.principal("G1")
    assert district.get(f"/api/v1/runs/{run}/roster", outsider).status_code == 404


def test_partners_get_counts_and_missing_names_only_when_the_playbook_allows(district, make_partner, app):
    partner = make_partner([district.g2])
    run = district.start(district.g2, mode="real")
    teacher = district.teacher("G2", 1)
    roster = district.get(f"/api/v1/runs/{run}/roster/room", teacher).get_json()["students"]
    district.check_in(run, teacher, exceptions=[{"student_id": roster[0]["id"], "status": "missing"}])
    answer = district.get(f"/api/v1/runs/{run}/roster", partner).get_json()
    assert answer["counts"]["missing"] == 1 and answer["names_included"] is False
    assert "students" not in answer and "missing" not in answer

    from emergency.runs.models import Run

    stored = district.session.get(Run, run)
    stored.playbook = {**stored.playbook, "accountability": {**stored.playbook["accountability"],
                                                             "partner_missing_names": True}}
    district.session.commit()
    answer = district.get(f"/api/v1/runs/{run}/roster", partner).get_json()
    assert [s["id"] for s in answer["missing"]] == [roster[0]["id"]] and "students" not in answer


def test_bad_student_reports_are_refused_with_a_clear_422(district, make_person):
    run = district.start(district.g2)
    teacher = district.teacher("G2", 1)
    roster = district.get(f"/api/v1/runs/{run}/roster/room", teacher).get_json()["students"]
    elsewhere = district.get(f"/api/v1/runs/{run}/roster/room", district.teacher("G2", 2)).get_json()["students"]
    g1_student = district.session.scalar(select(Student.id).where(Student.school_id == district.g1.id))
    cases = [
        {"exceptions": [{"student_id": elsewhere[0]["id"], "status": "missing"}]},
        {"exceptions": [{"student_id": roster[0]["id"], "status": "present"}]},
        {"extras": [{"student_id": roster[0]["id"], "status": "present"}]},
        {"extras": [{"student_id": g1_student, "status": "present"}]},
        {"extras": [{"student_id": elsewhere[0]["id"], "status": "missing"}]},
        {"exceptions": [{"student_id": roster[0]["id"], "status": "missing"},
                        {"student_id": roster[0]["id"], "status": "absent"}]},
        {"exceptions": [{"student_id": "x", "status": "missing"}]},
    ]
    for body in cases:
        response = district.check_in(run, teacher, **body)
        assert response.status_code == 422, body
        assert response.get_json()["code"] == "validation_failed" and response.get_json()["message"]
    assert district.get(f"/api/v1/runs/{run}/roster/students", teacher, q="a").status_code == 422
    assert district.session.scalar(select(Checkin.id)) is None


def test_a_replayed_student_checkin_counts_once(district):
    run = district.start(district.g2)
    teacher = district.teacher("G2", 1)
    roster = district.get(f"/api/v1/runs/{run}/roster/room", teacher).get_json()["students"]
    body = {"exceptions": [{"student_id": roster[0]["id"], "status": "missing"}]}
    assert district.check_in(run, teacher, key="k1", **body).status_code == 201
    assert district.check_in(run, teacher, key="k1", **body).status_code == 200
    counts = district.get(f"/api/v1/runs/{run}/roster", district.principal("G2")).get_json()["counts"]
    assert counts["missing"] == 1 and counts["present"] == 24


def test_every_read_of_a_student_list_is_logged_and_admins_export_it(district, session, make_person):
    run = district.start(district.g2)
    teacher, principal = district.teacher("G2", 1), district.principal("G2")
    district.get(f"/api/v1/runs/{run}/roster/room", teacher)
    district.get(f"/api/v1/runs/{run}/roster/students", teacher, q="an")
    district.get(f"/api/v1/runs/{run}/roster", principal)
    reads = list(session.scalars(select(StudentDataRead).order_by(StudentDataRead.id)))
    assert [(r.what, r.actor_id, r.run_id) for r in reads] == [
        ("room_roster", teacher.id, run), ("student_search", teacher.id, run), ("school_roster", principal.id, run)]
    assert reads[0].students == 25 and reads[2].students == 100

    listed = district.get("/api/v1/privacy/student-data-reads", principal).get_json()["entries"]
    assert [e["what"] for e in listed] == ["school_roster", "student_search", "room_roster"]
    exported = district.get("/api/v1/privacy/student-data-reads", principal, format="csv")
    assert exported.mimetype == "text/csv"
    lines = exported.get_data(True).splitlines()
    assert lines[0].startswith("at,school_id,run_id,what,students") and len(lines) == 4
    assert district.get("/api/v1/privacy/student-data-reads", teacher).status_code == 403
    assert district.get("/api/v1/privacy/student-data-reads", district.principal("G1")).get_json()["entries"] == []
    assert district.get("/api/v1/privacy/student-data-reads", district.principal("G1"),
                        school_id=district.g2.id).status_code == 404
    district_admin = make_person("district_admin", [])
    assert len(district.get("/api/v1/privacy/student-data-reads", district_admin).get_json()["entries"]) == 3
