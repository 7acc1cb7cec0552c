"""The OneRoster import: 1.1 and 1.2, every problem with its line, all or nothing, re-import, bulk and delta."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from emergency.cli import main
from emergency.demo import DEMO_DIR
from emergency.directory.csv_io import import_directory
from emergency.directory.models import School
from emergency.roster.models import Enrollment, RosterClass, RosterTeacher, Student
from emergency.roster.oneroster import RosterImportFailed, import_roster
from emergency.roster.sample import generate_district


def _count(session, model, **where) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return session.scalar(query)


def _rewrite(path: Path, change) -> None:
    """Rewrite a CSV file row by row: change(row) returns the row, or None to drop it."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        header = list(rows[0].keys())
    kept = [r for r in (change(dict(row)) for row in rows) if r is not None]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)


def _manifest(folder: Path, **modes) -> None:
    def change(row):
        kind = row["propertyName"].removeprefix("file.")
        if kind in modes:
            row["value"] = modes[kind]
        return row
    _rewrite(folder / "manifest.csv", change)


@pytest.fixture
def demo(session, tmp_path) -> Path:
    import_directory(session, DEMO_DIR)
    session.commit()
    folder = tmp_path / "oneroster"
    shutil.copytree(DEMO_DIR / "oneroster", folder)
    return folder


def test_the_demo_sample_imports_and_matches_schools_teachers_and_rooms(session, demo):
    report = import_roster(session, demo)
    assert report.version == "1.1" and report.notes == []
    assert report.created == {"students": 336, "classes": 186, "enrollments": 1674}
    pcms = session.scalar(select(School).where(School.code == "PCMS"))
    assert _count(session, Student, school_id=pcms.id) == 8 * _count(session, RosterClass, school_id=pcms.id,
                                                                     homeroom=True)
    assert session.scalar(select(func.count()).select_from(RosterClass).where(RosterClass.room_id.is_(None))) == 0
    with (demo / "users.csv").open(encoding="utf-8") as handle:
        teachers = sum(row["role"] == "teacher" for row in csv.DictReader(handle))
    assert _count(session, RosterTeacher) == teachers == 42
    assert session.scalar(select(func.count()).select_from(Enrollment).where(
        Enrollment.role == "teacher", Enrollment.person_id.is_(None))) == 0
    assert "Imported the roster." in report.lines()
    # Importing the same export again changes nothing.
    again = import_roster(session, demo)
    assert again.created == dict.fromkeys(again.created, 0) and again.updated == dict.fromkeys(again.updated, 0)


def test_oneroster_1_2_with_roles_csv_imports_the_same_district(session, tmp_path):
    files = generate_district(tmp_path, students=100, schools=2, version="1.2")
    assert "roles.csv" in files["files"]
    import_directory(session, tmp_path / "directory")
    report = import_roster(session, tmp_path / "oneroster")
    assert report.version == "1.2" and report.created["students"] == 100
    assert _count(session, Enrollment, role="teacher") > 0 and report.notes == []


def test_every_problem_is_reported_with_file_line_and_column_and_nothing_is_imported(session, demo):
    _rewrite(demo / "users.csv", lambda r: {**r, "givenName": ""} if r["sourcedId"] == "s-000002" else r)
    _rewrite(demo / "classes.csv", lambda r: {**r, "classType": "lecture"} if r["sourcedId"] == "hr-PAE-3" else
             {**r, "schoolSourcedId": "org-nowhere"} if r["sourcedId"] == "hr-PAE-4" else r)
    _rewrite(demo / "enrollments.csv", lambda r: {**r, "classSourcedId": "c-gone"}
             if r["sourcedId"] == "e-hr-PAE-1-s-000001" else r)
    with (demo / "enrollments.csv").open("a", encoding="utf-8") as handle:
        handle.write("e-dup,active,2026-08-15,hr-PAE-1,org-pae,s-999999,student,,,\n")
        handle.write("e-dup,active,2026-08-15,hr-PAE-1,org-pae,s-000001,student,,,\n")
    with pytest.raises(RosterImportFailed) as failed:
        import_roster(session, demo)
    problems = failed.value.problems
    assert "classes.csv:4: classType: must be homeroom or scheduled, got 'lecture'" in problems
    assert "classes.csv:5: schoolSourcedId: unknown org 'org-nowhere'" in problems
    assert "users.csv:4: givenName: is empty" in problems
    assert "enrollments.csv:3: classSourcedId: unknown class 'c-gone'" in problems
    assert "enrollments.csv:1676: userSourcedId: unknown user 's-999999'" in problems
    assert "enrollments.csv:1677: sourcedId: duplicate sourcedId 'e-dup' (also on line 1676)" in problems
    files = [p.split(":")[0] for p in problems]
    assert files == sorted(files, key=["classes.csv", "users.csv", "enrollments.csv"].index)
    assert _count(session, Student) == 0 and _count(session, RosterClass) == 0


def test_manifest_problems_are_reported(session, demo):
    _manifest(demo, users="sometimes", demographics="bulk")
    (demo / "orgs.csv").unlink()
    with pytest.raises(RosterImportFailed) as failed:
        import_roster(session, demo)
    assert failed.value.problems == [
        "manifest.csv:4: value: says orgs.csv is bulk, but the folder has no such file",
        "manifest.csv:8: value: must be bulk, delta or absent, got 'sometimes'",
        "manifest.csv:11: value: says demographics.csv is bulk, but the folder has no such file",
    ]
    (demo / "manifest.csv").unlink()
    with pytest.raises(RosterImportFailed) as failed:
        import_roster(session, demo)
    assert failed.value.problems == ["manifest.csv:1: (file): is missing: a OneRoster export starts with manifest.csv"]


def test_a_delta_updates_and_deactivates_without_losing_history(session, demo):
    import_roster(session, demo)
    student = session.scalar(select(Student).where(Student.sourced_id == "s-000001"))
    for name in ("classes", "academicSessions", "courses", "orgs"):
        (demo / f"{name}.csv").unlink()
    _manifest(demo, orgs="absent", classes="absent", academicSessions="absent", courses="absent",
              users="delta", enrollments="delta")
    _rewrite(demo / "users.csv", lambda r: {**r, "status": "tobedeleted"} if r["sourcedId"] == "s-000001" else
             {**r, "familyName": "Renamed"} if r["sourcedId"] == "s-000002" else
             r if r["sourcedId"].startswith("t-") else None)
    _rewrite(demo / "enrollments.csv", lambda r: {**r, "status": "tobedeleted"}
             if r["sourcedId"] == "e-hr-PAE-2-s-000010" else None)
    report = import_roster(session, demo)
    assert report.modes["users"] == "delta"
    assert report.deactivated["students"] == 1 and report.updated["students"] == 1
    assert report.deactivated["enrollments"] == 1
    session.refresh(student)
    assert student.active is False and student.given_name  # kept, for the runs that named it
    assert _count(session, Student, active=True) == 335
    assert _count(session, RosterClass, active=True) == 186  # a delta leaves out what did not change


def test_a_delta_needs_a_status_on_every_row(session, demo):
    _manifest(demo, users="delta")
    _rewrite(demo / "users.csv", lambda r: {**r, "status": ""} if r["sourcedId"] == "s-000003" else r)
    with pytest.raises(RosterImportFailed) as failed:
        import_roster(session, demo)
    assert failed.value.problems == ["users.csv:5: status: a delta file needs active or tobedeleted, got ''"]


def test_a_bulk_export_deactivates_what_it_no_longer_lists(session, demo):
    import_roster(session, demo)
    _rewrite(demo / "users.csv", lambda r: None if r["sourcedId"] in ("s-000001", "s-000002") else r)
    _rewrite(demo / "enrollments.csv", lambda r: None if r["userSourcedId"] in ("s-000001", "s-000002") else r)
    report = import_roster(session, demo)
    assert report.deactivated["students"] == 2 and report.deactivated["enrollments"] == 2
    assert _count(session, Student, active=False) == 2
    _rewrite(demo / "users.csv", lambda r: r)
    shutil.copy(DEMO_DIR / "oneroster" / "users.csv", demo / "users.csv")
    shutil.copy(DEMO_DIR / "oneroster" / "enrollments.csv", demo / "enrollments.csv")
    back = import_roster(session, demo)
    assert back.updated["students"] == 2 and _count(session, Student, active=False) == 0


def test_unmatched_orgs_teachers_and_locations_are_notes_not_problems(session, demo):
    _rewrite(demo / "orgs.csv", lambda r: {**r, "identifier": "NOPE", "sourcedId": r["sourcedId"]}
             if r["sourcedId"] == "org-pae" else r)
    session.scalar(select(School).where(School.code == "PAE")).sourced_id = None
    session.commit()
    _rewrite(demo / "users.csv", lambda r: {**r, "email": "someone.else@pcsd.example.org"}
             if r["sourcedId"] == "t-PCMS-1" else r)
    _rewrite(demo / "classes.csv", lambda r: {**r, "location": "Portable 9"} if r["sourcedId"] == "c-PCMS-2-p1"
             else {**r, "location": "Rm 204"} if r["sourcedId"] == "c-PCMS-3-p1" else r)
    report = import_roster(session, demo)
    notes = "\n".join(report.notes)
    assert "orgs.csv:3: school org org-pae matches no school" in notes
    assert "teacher t-PCMS-1 matches no person by email" in notes
    assert "location 'Portable 9' is not a room of PCMS" in notes
    assert report.created["students"] == 336 - 18 * 8  # the elementary school's students were skipped
    located = session.scalar(select(RosterClass).where(RosterClass.sourced_id == "c-PCMS-3-p1"))
    assert located.room.number == "204"


def test_a_dry_run_checks_everything_and_writes_nothing(session, demo):
    report = import_roster(session, demo, dry_run=True)
    assert report.created["students"] == 336 and report.lines()[0].startswith("Dry run")
    assert _count(session, Student) == 0 and _count(session, Enrollment) == 0


def test_a_generated_district_of_5000_students_imports(session, tmp_path):
    generate_district(tmp_path, students=5000, schools=4)
    import_directory(session, tmp_path / "directory")
    started = time.perf_counter()
    report = import_roster(session, tmp_path / "oneroster")
    seconds = time.perf_counter() - started
    assert report.created["students"] == 5000
    assert report.created["enrollments"] > 25_000
    print(f"5,000-student import: {seconds:.1f} s")  # a figure for the report, not an assertion
    again = import_roster(session, tmp_path / "oneroster")
    assert again.unchanged["enrollments"] == report.created["enrollments"]


def test_the_cli_prints_every_problem_and_exits_1(session, demo, make_config, tmp_path):
    config = make_config()
    env = {"DATABASE_URL": config.DATABASE_URL, "ENV": "test", "PLAYBOOKS_DIR": config.PLAYBOOKS_DIR,
           "COMPLIANCE_RULES": config.COMPLIANCE_RULES, "INSTANCE_PATH": str(tmp_path / "cli")}
    session.rollback()  # SQLite: let the command take the write lock

    def invoke(*args: str):
        return CliRunner(env=env).invoke(main, list(args))

    _rewrite(demo / "classes.csv", lambda r: {**r, "classType": "lecture"} if r["sourcedId"] == "hr-PAE-3" else r)
    result = invoke("roster", "import", str(demo))
    assert result.exit_code == 1
    assert "classes.csv:4: classType: must be homeroom or scheduled, got 'lecture'" in result.output
    assert "nothing was imported" in result.output
    shutil.copy(DEMO_DIR / "oneroster" / "classes.csv", demo / "classes.csv")
    result = invoke("roster", "import", "--dry-run", str(demo))
    assert result.exit_code == 0 and "students: 336 created" in result.output
    result = invoke("roster", "import", str(demo))
    session.rollback()
    assert result.exit_code == 0 and _count(session, Student) == 336
