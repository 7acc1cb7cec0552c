"""Fictional OneRoster exports: the demo district's small sample and generated districts of any size.

Every name is made up. `generate_district` writes a whole district (directory CSVs, bell schedules
and a OneRoster export) for tests and benchmarks; `write_oneroster` writes only the export for
schools that already exist (the demo district, via tools/make_demo_roster.py).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

from emergency.roster.oneroster import COLUMNS, FILES

GIVEN = ["Amara", "Bodhi", "Camila", "Dante", "Esme", "Finn", "Gia", "Hugo", "Iris", "Jonah", "Kaia", "Leo",
         "Maya", "Nico", "Opal", "Pablo", "Quinn", "Rosa", "Silas", "Tala", "Uma", "Vera", "Wes", "Ximena",
         "Yara", "Zane", "Aiyana", "Bruno", "Cielo", "Dario", "Elif", "Femi", "Greta", "Hamza", "Ines", "Jae"]
FAMILY = ["Abara", "Benedetti", "Carrasco", "Dunmore", "Echeverría", "Falkner", "Gallardo", "Hollis", "Iwu",
          "Jansen", "Kovač", "Lindqvist", "Mbeki", "Navarro", "O'Shea", "Paredes", "Quist", "Renner", "Solano",
          "Tanaka", "Ulloa", "Varga", "Whitfield", "Yoon", "Zubiri", "Abreu-Lind", "Castellanos", "DeMarco"]
SCHEDULE_DAYS = "mon;tue;wed;thu;fri"


@dataclass
class SampleTeacher:
    email: str
    room: str
    name: str = ""


@dataclass
class SampleSchool:
    sourced_id: str
    code: str
    name: str
    elementary: bool
    teachers: list[SampleTeacher]


def periods_of(count: int, first: str = "08:00", minutes: int = 45, passing: int = 4) -> list[tuple[str, str, str]]:
    """`count` periods named 1..count from `first`, with a 30-minute lunch after the fourth."""
    hour, minute = (int(part) for part in first.split(":"))
    at = hour * 60 + minute
    out = []
    for n in range(1, count + 1):
        out.append((str(n), f"{at // 60:02d}:{at % 60:02d}", f"{(at + minutes) // 60:02d}:{(at + minutes) % 60:02d}"))
        at += minutes + passing + (30 if n == 4 else 0)
    return out


def write_oneroster(folder: Path, schools: list[SampleSchool], *, students_per_class: int = 25,
                    periods: int = 6, version: str = "1.1", seed: int = 1, district: str = "org-district",
                    year: str = "2026") -> dict[str, int]:
    """Write a bulk OneRoster export for `schools` into `folder`; returns rows per file."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    base = ["active", f"{year}-08-15T12:00:00.000Z"]
    term = f"term-{year}"
    rows: dict[str, list[list[str]]] = {kind: [] for kind in ("orgs", "academicSessions", "courses", "classes",
                                                                "users", "roles", "enrollments")}
    rows["orgs"].append([district, *base, "Fictional School District", "district", "FSD", ""])
    rows["academicSessions"].append([term, *base, f"{year}-{int(year) + 1}", "schoolYear", f"{year}-09-01",
                                     f"{int(year) + 1}-06-26", "", str(int(year) + 1)])
    number = 0
    for school in schools:
        rows["orgs"].append([school.sourced_id, *base, school.name, "school", school.code, district])
        course = f"course-{school.code}-core"
        rows["courses"].append([course, *base, term, "Core", f"{school.code}-CORE", "", school.sourced_id, "", ""])
        students = []
        for t_index, teacher in enumerate(school.teachers):
            teacher_id = f"t-{school.code}-{t_index + 1}"
            given, _, family = (teacher.name or teacher.email.split("@")[0].replace(".", " ")).partition(" ")
            rows["users"].append(_user(version, teacher_id, base, "teacher", school.sourced_id, given.title(),
                                       family.title() or "Teacher", teacher.email, ""))
            homeroom = f"hr-{school.code}-{t_index + 1}"
            rows["classes"].append([homeroom, *base, f"Homeroom {teacher.room}", "", course, homeroom, "homeroom",
                                    f"Room {teacher.room}", school.sourced_id, term, "", "", ""])
            rows["enrollments"].append([f"e-{homeroom}-t", *base, homeroom, school.sourced_id, teacher_id,
                                        "teacher", "true", "", ""])
            for _ in range(students_per_class):
                number += 1
                student_id = f"s-{number:06d}"
                rows["users"].append(_user(version, student_id, base, "student", school.sourced_id,
                                           rng.choice(GIVEN), rng.choice(FAMILY), "", f"{100000 + number}",
                                           grade="03" if school.elementary else "07"))
                rows["enrollments"].append([f"e-{homeroom}-{student_id}", *base, homeroom, school.sourced_id,
                                            student_id, "student", "", "", ""])
                students.append(student_id)
        if school.elementary:
            continue
        for period in range(1, periods + 1):
            # Each period every student sits in one teacher's room, not usually their homeroom's.
            shuffled = students[:]
            rng.shuffle(shuffled)
            for t_index, teacher in enumerate(school.teachers):
                section = f"c-{school.code}-{t_index + 1}-p{period}"
                rows["classes"].append([section, *base, f"Section {teacher.room} P{period}", "", course, section,
                                        "scheduled", teacher.room, school.sourced_id, term, "", "", str(period)])
                rows["enrollments"].append([f"e-{section}-t", *base, section, school.sourced_id,
                                            f"t-{school.code}-{t_index + 1}", "teacher", "true", "", ""])
                for student_id in shuffled[t_index::len(school.teachers)]:
                    rows["enrollments"].append([f"e-{section}-{student_id}", *base, section, school.sourced_id,
                                                student_id, "student", "", "", ""])
    files = ["orgs", "academicSessions", "courses", "classes", "users", "enrollments"]
    if version == "1.2":
        files.append("roles")
        for user in rows["users"]:
            user_id, role, org = user[0], user.pop(), user.pop()
            rows["roles"].append([f"r-{user_id}", *base, user_id, "primary", role, org, "", "", ""])
    _write(folder / "manifest.csv", ["propertyName", "value"],
           [["manifest.version", "1.0"], ["oneroster.version", version]]
           + [[f"file.{kind}", "bulk" if kind in files else "absent"] for kind in FILES])
    written = {}
    for kind in files:
        _write(folder / FILES[kind], list(_header(kind, version)), rows[kind])
        written[FILES[kind]] = len(rows[kind])
    return written


def _header(kind: str, version: str) -> tuple[str, ...]:
    if kind == "users":
        return ("sourcedId", "status", "dateLastModified", "enabledUser", "username", "givenName", "familyName",
                "identifier", "email", "grades") + (("orgSourcedIds", "role") if version == "1.1" else ())
    return COLUMNS[kind]


def _user(version: str, sourced_id: str, base: list[str], role: str, org: str, given: str, family: str,
          email: str, identifier: str, grade: str = "") -> list[str]:
    # 1.1 carries role and orgs on the user; 1.2 moves them to roles.csv (popped off by the caller).
    return [sourced_id, *base, "true", sourced_id, given, family, identifier, email, grade, org, role]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def generate_district(folder: Path, *, students: int = 5000, schools: int = 4, class_size: int = 25,
                      periods: int = 6, version: str = "1.1", seed: int = 1) -> dict:
    """Write a fictional district of about `students` students: `folder`/directory (schools.csv, rooms.csv,
    people.csv), `folder`/bell_schedules.csv and `folder`/oneroster. The first school is an elementary
    school (homerooms only); the others have `periods` periods a day."""
    per_school = max(1, students // schools)
    teachers_per_school = max(1, per_school // class_size)
    sample, school_rows, room_rows, people_rows, bell_rows = [], [], [], [], []
    phone = 0
    for index in range(schools):
        code = f"G{index + 1}"
        elementary = index == 0
        teachers = []
        for t in range(teachers_per_school):
            room = str(100 + t + 1)
            email = f"teacher{t + 1}@{code.lower()}.example.org"
            phone += 1
            room_rows.append([code, room, f"Room {room}", "1", "classroom", str(class_size + 5)])
            people_rows.append([f"Teacher {t + 1} {code}", "teacher", f"+1914555{phone:04d}", email, code, room,
                                "yes"])
            teachers.append(SampleTeacher(email, room, f"Teacher{t + 1} {code}"))
        phone += 1
        people_rows.append([f"Principal {code}", "school_admin", f"+1914555{phone:04d}",
                            f"principal@{code.lower()}.example.org", code, "", "yes"])
        school_rows.append([code, f"Generated School {index + 1}", "", "America/New_York", "15:00",
                            f"org-{code.lower()}"])
        if not elementary:
            bell_rows.extend([code, "regular", SCHEDULE_DAYS, name, start, end]
                             for name, start, end in periods_of(periods))
        sample.append(SampleSchool(f"org-{code.lower()}", code, f"Generated School {index + 1}", elementary,
                                   teachers))
    directory = folder / "directory"
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / "schools.csv", ["code", "name", "address", "timezone", "dismissal_time", "sourced_id"],
           school_rows)
    _write(directory / "rooms.csv", ["school_code", "number", "name", "floor", "kind", "capacity"], room_rows)
    _write(directory / "people.csv", ["name", "role", "mobile", "email", "schools", "home_room", "active"],
           people_rows)
    _write(folder / "bell_schedules.csv", ["school_code", "day_type", "days", "period", "start", "end"], bell_rows)
    written = write_oneroster(folder / "oneroster", sample, students_per_class=class_size, periods=periods,
                              version=version, seed=seed)
    return {"schools": sample, "files": written}
