"""The demo district: its files import cleanly, and `ensure_demo` loads it once and prints working logins."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from emergency.demo import DEMO_DIR, DEMO_LOGINS, DEMO_PASSWORD, ensure_demo
from emergency.directory.csv_io import export_directory, import_directory
from emergency.directory.models import Partner, Person, Room, School
from emergency.directory.roles import DISTRICT_ADMIN, SCHOOL_ADMIN, TEACHER


def test_demo_files_import_with_no_problems_into_a_plausible_district(session):
    report = import_directory(session, DEMO_DIR)

    assert report.created["schools"] == 3 and report.created["partners"] == 3
    assert 90 <= report.created["people"] <= 110
    schools = list(session.scalars(select(School).order_by(School.code)))
    assert [s.code for s in schools] == ["PAE", "PCHS", "PCMS"]
    for school in schools:
        assert school.timezone == "America/New_York" and school.dismissal_time
        kinds = {room.kind for room in school.rooms}
        assert 25 <= len(school.rooms) <= 60
        assert {"classroom", "gym", "cafeteria", "library", "office", "nurse"} <= kinds
        staff = [p for p in session.scalars(select(Person)) if school in p.schools]
        assert sum(p.role == SCHOOL_ADMIN for p in staff) == 2
        assert {"teacher", "staff", "nurse", "security"} <= {p.role for p in staff}
        assert all(p.home_room for p in staff if p.role == TEACHER)
        assert {p.role for p in session.scalars(select(Partner)) if school in p.schools} == {"police", "fire", "ems"}
    people = list(session.scalars(select(Person)))
    assert sum(p.role == DISTRICT_ADMIN for p in people) == 2
    assert sum(p.mobile is None for p in people) == 2
    assert all(p.email.endswith("@pcsd.example.org") for p in people)
    assert any(re.search(r"[À-ÿ]", p.name) and "'" in p.name and "-" in p.name for p in people)


def test_demo_files_are_exactly_what_export_writes(session, tmp_path):
    import_directory(session, DEMO_DIR)
    export_directory(session, tmp_path)
    for name in ("schools.csv", "rooms.csv", "people.csv", "partners.csv"):
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), name


def test_ensure_demo_loads_once_and_prints_working_logins(app, session, client):
    first = ensure_demo(session, app)
    rooms = session.scalar(select(func.count()).select_from(Room))
    second = ensure_demo(session, app)

    assert first[0].startswith("Loaded the demo district (3 schools")
    assert second[0] == f"Demo logins (password for all, unless you changed it: {DEMO_PASSWORD}):"
    assert first[1:] == second[1:] and len(second) == 1 + len(DEMO_LOGINS)
    assert session.scalar(select(func.count()).select_from(Room)) == rooms
    assert session.scalar(select(func.count()).select_from(School)) == 3
    for (role, email), line in zip(DEMO_LOGINS, second[1:], strict=True):
        assert line.startswith(f"  {role}: ") and email in line
        assert "curl -s -X POST http://testserver/api/v1/auth/login" in line
        response = client.post("/api/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
        assert response.status_code == 200, response.get_json()
    teacher = session.scalar(select(Person).where(Person.email == DEMO_LOGINS[2][1]))
    assert teacher.role == TEACHER and teacher.home_room is not None
    assert [s.code for s in teacher.schools] == ["PCMS"]


def test_ensure_demo_leaves_another_district_alone(app, session, make_school):
    make_school(code="REAL")
    lines = ensure_demo(session, app)
    assert session.scalar(select(func.count()).select_from(School)) == 1
    assert all("no demo login" in line for line in lines[1:])
