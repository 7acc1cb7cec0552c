"""Write examples/demo-district/*.csv: a made-up Port Chester district for demos and tests.

Run `.venv/bin/python tools/make_demo_district.py`. The rows are built here, imported into a scratch
SQLite database and exported again, so the files are exactly what `emergency directory export`
writes (and a demo import that fails here never reaches the repository).
"""

from __future__ import annotations

import csv
import sys
import tempfile
import unicodedata
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import emergency.models  # noqa: E402, F401  (registers every table)
from emergency.db import Base  # noqa: E402
from emergency.directory.csv_io import COLUMNS, export_directory, import_directory  # noqa: E402

OUT = REPO / "examples" / "demo-district"
DOMAIN = "pcsd.example.org"

SCHOOLS = [
    ("PAE", "Park Avenue Elementary", "75 Park Avenue, Port Chester, NY 10573", "15:05"),
    ("PCMS", "Port Chester Middle School", "113 Bowman Avenue, Port Chester, NY 10573", "14:50"),
    ("PCHS", "Port Chester High School", "1 Tamarack Road, Port Chester, NY 10573", "14:30"),
]

# Per school: classroom floors and rooms per floor, science labs, and the shared spaces.
LAYOUT = {
    "PAE": {"floors": {1: 14, 2: 14}, "labs": 0, "capacity": 24},
    "PCMS": {"floors": {1: 16, 2: 16, 3: 6}, "labs": 3, "capacity": 28},
    "PCHS": {"floors": {1: 16, 2: 16, 3: 14}, "labs": 4, "capacity": 30},
}
SHARED = [
    ("GYM", "Gymnasium", "1", "gym", 120),
    ("CAF", "Cafeteria", "1", "cafeteria", 200),
    ("LIB", "Library", "2", "library", 60),
    ("MAIN", "Main Office", "1", "office", 12),
    ("NURSE", "Nurse's Office", "1", "nurse", 8),
    ("AUD", "Auditorium", "1", "auditorium", 400),
]

FIRST = ["Ana", "Brian", "Carmen", "David", "Elena", "Frank", "Gabriela", "Henry", "Isabel", "James",
         "Karen", "Luis", "Monica", "Nathan", "Olivia", "Pedro", "Rachel", "Samuel", "Teresa", "Victor",
         "Wendy", "Xavier", "Yolanda", "Adrián", "Beatriz", "Colin", "Daniela", "Ethan", "Fatima", "Gregory",
         "Hannah", "Ignacio", "Julia", "Kevin", "Lucía", "Michael", "Noemí", "Oscar", "Priya", "Ramón"]
LAST = ["Alvarez", "Bennett", "Castillo", "D'Amico", "Esposito", "Flores", "García", "Hughes", "Ibáñez",
        "Jensen", "Kowalski", "López", "Morales", "Nolan", "Ortiz", "Pérez-Santos", "Quinn", "Rivera",
        "Sánchez", "Thompson", "Urbina", "Vargas", "Walsh", "Yilmaz", "Zamora", "Brennan", "Cruz",
        "DiNapoli", "O'Hara", "Mejía", "Romano", "Schultz", "Torres", "Villanueva", "Whelan", "Acosta",
        "Delgado", "Fitzgerald", "Guzmán", "Haddad", "Kim", "Lombardi", "McCarthy", "Nuñez", "Okafor"]

# (role, name or None for a generated one, room or None, extra school codes, has mobile)
STAFF = {
    "PAE": ([("school_admin", "Margaret Kealy", "MAIN"), ("school_admin", "Héctor Villalobos", "MAIN")]
            + [("teacher", None, "classroom")] * 18
            + [("staff", "Renée Lefèvre", "LIB"), ("staff", None, "MAIN"), ("staff", None, None),
               ("staff", None, None), ("nurse", "Siobhán O'Connor", "NURSE"), ("security", None, None)]),
    "PCMS": ([("school_admin", "Thomas O'Neill", "MAIN"), ("school_admin", "Chloé Dubois-Martin", "MAIN")]
             + [("teacher", "Zoë O'Brien-Núñez", "204")]
             + [("teacher", None, "classroom")] * 23
             + [("staff", None, "LIB"), ("staff", None, "MAIN"), ("staff", None, None), ("staff", None, None),
                ("nurse", "María José Peña", "NURSE"), ("security", None, None), ("security", None, None)]),
    "PCHS": ([("school_admin", "Dolores Ruiz-Whitaker", "MAIN"), ("school_admin", "Kwame Mensah", "MAIN")]
             + [("teacher", "Dario D'Angelo", "lab")]
             + [("teacher", None, "classroom")] * 26
             + [("staff", None, "LIB"), ("staff", None, "MAIN"), ("staff", None, "CAF"), ("staff", None, None),
                ("staff", None, None), ("nurse", None, "NURSE"), ("security", "Jean-Luc Beaumont", None),
                ("security", None, None)]),
}
DISTRICT_ADMINS = ["Marisol Gutiérrez", "Patrick McAllister-Shaw"]
# A music teacher and a psychologist work in two buildings.
SECOND_SCHOOL = {("PAE", 3): "PCMS", ("PCMS", 28): "PCHS"}
# Realistic: a couple of staff gave no mobile and will show up as unreachable.
NO_MOBILE = {("PAE", 22), ("PCHS", 33)}

PARTNERS = [
    ("Port Chester Police Department", "Sgt. Anthony Russo", "police", "anthony.russo@pcpd.example.org"),
    ("Port Chester Fire Department", "Lt. Kevin Brennan", "fire", "kevin.brennan@pcfd.example.org"),
    ("Sound Shore Volunteer Ambulance Corps", "Capt. Rosa Jiménez", "ems", "rosa.jimenez@ssvac.example.org"),
]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch in ".-")


def _email(name: str, taken: set[str]) -> str:
    parts = name.replace("'", "").split()
    base = _ascii(f"{parts[0]}.{parts[-1]}")
    email, n = f"{base}@{DOMAIN}", 2
    while email in taken:
        email, n = f"{base}{n}@{DOMAIN}", n + 1
    taken.add(email)
    return email


def build_rows() -> dict[str, list[list[str]]]:
    """Every row of the four files, before the import normalises them."""
    phones = iter(f"(914) 555-{n:04d}" for n in range(100, 200))
    names = iter(f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}" for i in range(1000))
    taken: set[str] = set()
    schools = [[code, name, address, "America/New_York", dismissal, f"org-{code.lower()}"]
               for code, name, address, dismissal in SCHOOLS]
    rooms: list[list[str]] = []
    classrooms: dict[str, list[str]] = {}
    labs: dict[str, list[str]] = {}
    for code, layout in LAYOUT.items():
        classrooms[code], labs[code] = [], []
        for floor, count in layout["floors"].items():
            for n in range(1, count + 1):
                number = f"{floor}{n:02d}"
                classrooms[code].append(number)
                rooms.append([code, number, f"Room {number}", str(floor), "classroom", str(layout["capacity"])])
        for n in range(1, layout["labs"] + 1):
            number = f"L{n}"
            labs[code].append(number)
            rooms.append([code, number, f"Science Lab {n}", "2", "lab", "24"])
        rooms += [[code, number, name, floor, kind, str(cap)] for number, name, floor, kind, cap in SHARED]
    people: list[list[str]] = []
    for name in DISTRICT_ADMINS:
        people.append([name, "district_admin", next(phones), _email(name, taken), "", "", "yes"])
    for code, staff in STAFF.items():
        free = [n for n in classrooms[code] if n != "204"]
        for index, (role, name, room) in enumerate(staff):
            name = name or next(names)
            if room == "classroom":
                room = free.pop(0)
            elif room == "lab":
                room = labs[code][0]
            codes = [code] + ([SECOND_SCHOOL[(code, index)]] if (code, index) in SECOND_SCHOOL else [])
            mobile = "" if (code, index) in NO_MOBILE else next(phones)
            people.append([name, role, mobile, _email(name, taken), ";".join(codes), room or "", "yes"])
    partners = [[agency, name, role, next(phones), email, "PAE;PCMS;PCHS", "yes"]
                for agency, name, role, email in PARTNERS]
    return {"schools": schools, "rooms": rooms, "people": people, "partners": partners}


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "raw"
        raw.mkdir()
        for kind, rows in build_rows().items():
            with open(raw / f"{kind}.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(COLUMNS[kind])
                writer.writerows(rows)
        engine = create_engine(f"sqlite:///{scratch}/demo.sqlite3")
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            report = import_directory(session, raw)
            written = export_directory(session, OUT)
        engine.dispose()
    print(f"Created {report.created}; wrote {written} to {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
