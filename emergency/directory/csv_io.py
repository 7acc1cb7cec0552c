"""The directory as four CSV files: import (all or nothing, every problem reported) and export.

A district keeps its directory in a spreadsheet; these files are how it gets in and out. The import
checks every row of every file before it touches the database, so a typo on line 212 never leaves
half a directory behind, and the person fixing the file sees all of its problems at once.
"""

from __future__ import annotations

import csv
import io
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from emergency import csvfiles
from emergency.checking import Checker, Problems, dotted
from emergency.csvfiles import Row, escape_formula, read_rows
from emergency.db import MAX_INTEGER
from emergency.directory.models import Partner, Person, Room, School
from emergency.directory.roles import DISTRICT_ADMIN, PARTNER_KINDS, PERSON_ROLES
from emergency.phones import InvalidPhone, mask_phone, normalise_phone

ROOM_KINDS = ("classroom", "gym", "cafeteria", "office", "library", "auditorium", "lab", "nurse", "other")
KINDS = ("schools", "rooms", "people", "partners")
FILES = {kind: f"{kind}.csv" for kind in KINDS}

# Export order of the columns, and the columns an import cannot do without.
COLUMNS = {
    "schools": ("code", "name", "address", "timezone", "dismissal_time", "sourced_id"),
    "rooms": ("school_code", "number", "name", "floor", "kind", "capacity"),
    "people": ("name", "role", "mobile", "email", "schools", "home_room", "active"),
    "partners": ("agency", "name", "role", "mobile", "email", "schools", "active"),
}
REQUIRED = {
    "schools": ("code", "name", "timezone"),
    "rooms": ("school_code", "number"),
    "people": ("name", "role", "mobile", "email", "schools"),
    "partners": ("agency", "name", "role", "mobile", "email", "schools"),
}
MODELS = {"schools": School, "rooms": Room, "people": Person, "partners": Partner}

_EMAIL = re.compile(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,.]+$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_DIGITS = re.compile(r"[0-9]+")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


class ImportFailed(csvfiles.ImportFailed):
    files = "directory files"


@dataclass
class ImportReport(csvfiles.ImportReport):
    KINDS: ClassVar[tuple[str, ...]] = KINDS
    IMPORTED: ClassVar[str] = "Imported the directory."

    changes: list[str] = field(default_factory=list)

    def detail_lines(self) -> list[str]:
        return ["Changes:", *(f"  {change}" for change in self.changes)] if self.changes else []


class _Problems(Problems):
    """Problems keyed by kind ("rooms"); the shared reader reports by file name ("rooms.csv")."""

    def __init__(self):
        super().__init__(FILES.values())

    def add(self, kind: str, line: int, column: str, message: str) -> None:
        super().add(FILES.get(kind, kind), line, column, message)


_Row = Row


def _read(folder: Path, kind: str, problems: _Problems) -> list[_Row] | None:
    """The rows of one file, or None when the file is absent."""
    return read_rows(folder / FILES[kind], problems, COLUMNS[kind], REQUIRED[kind])


# ------------------------------------------------------------------------------------------- checking

class _Checker(Checker):
    """Turns the text of one row into typed values, recording each problem at its line and column."""

    def __init__(self, kind: str, row: _Row, problems: _Problems, region: str):
        super().__init__(lambda path, message: problems.add(kind, row.line, dotted(path), message))
        self.kind, self.row, self.problems, self.region = kind, row, problems, region

    def problem(self, column: str, message: str) -> None:
        self.error((column,), message)

    def has(self, column: str) -> bool:
        return column in self.row.values

    def cell(self, column: str, *, required: bool = False) -> str:
        value = self.row.values.get(column, "")
        if required and not value and self.has(column):
            self.problem(column, "is empty")
        length = _max_length(self.kind, column)
        if length and len(value) > length:
            self.problem(column, f"is longer than {length} characters")
        return value

    def choice_in(self, column: str, allowed: Iterable[str], what: str) -> str:
        value = self.cell(column, required=True).lower()
        if value:
            self.choice((column,), value, allowed, what)
        return value

    def mobile(self) -> str | None:
        value = self.cell("mobile")
        if not value:
            return None
        try:
            return normalise_phone(value, self.region)
        except InvalidPhone as exc:
            self.problem("mobile", str(exc))
            return None

    def email(self) -> str | None:
        value = self.cell("email").lower()
        if not value:
            return None
        if not _EMAIL.match(value) or ".." in value:
            self.problem("email", f"'{value}' is not an email address")
            return None
        return value

    def active(self) -> bool:
        value = self.cell("active").lower()
        if value in _YES or not value:
            return True
        if value in _NO:
            return False
        self.problem("active", f"must be yes or no, got '{value}'")
        return True

    def codes(self, column: str, known: set[str]) -> list[str]:
        codes: list[str] = []
        for code in (part.strip() for part in self.row.values.get(column, "").split(";")):
            if not code or code in codes:
                continue
            if code not in known:
                self.problem(column, f"unknown school code '{code}'")
            codes.append(code)
        return codes


def _max_length(kind: str, column: str) -> int | None:
    table = MODELS[kind].__table__
    if column not in table.c:
        return None
    return getattr(table.c[column].type, "length", None)


@dataclass
class _In:
    """One checked row: its key, the model fields it sets, and where it came from."""

    line: int
    key: tuple
    fields: dict


def _check_schools(rows: list[_Row], problems: _Problems, region: str) -> list[_In]:
    out, seen = [], {}
    for row in rows:
        c = _Checker("schools", row, problems, region)
        code = c.cell("code", required=True)
        if ";" in code:
            c.problem("code", "must not contain ';' (people.csv and partners.csv use it between codes)")
        fields = {"name": c.cell("name", required=True)}
        if c.has("address"):
            fields["address"] = c.cell("address")
        timezone = c.cell("timezone", required=True)
        if timezone:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                c.problem("timezone", f"unknown time zone '{timezone}'; use an IANA name such as "
                                      "America/New_York")
        fields["timezone"] = timezone
        if c.has("dismissal_time"):
            fields["dismissal_time"] = _dismissal(c)
        if c.has("sourced_id"):
            # The school's sourcedId in the district's OneRoster export (roster import matches on it).
            fields["sourced_id"] = c.cell("sourced_id") or None
        if code in seen:
            c.problem("code", f"duplicate school code '{code}' (also on line {seen[code]})")
        elif code:
            seen[code] = row.line
        if c.ok:
            out.append(_In(row.line, (code,), fields))
    return out


def _dismissal(c: _Checker) -> str | None:
    value = c.cell("dismissal_time")
    if not value:
        return None
    match = _TIME.match(value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        c.problem("dismissal_time", f"must be a 24-hour time HH:MM, got '{value}'")
        return None
    return f"{int(match[1]):02d}:{match[2]}"


def _check_rooms(rows: list[_Row], problems: _Problems, region: str, school_codes: set[str],
                 db_rooms: dict[tuple[str, str], Room]) -> list[_In]:
    out, seen = [], {}
    db_folded = {(code, number.casefold()): number for code, number in db_rooms}
    for row in rows:
        c = _Checker("rooms", row, problems, region)
        code = c.cell("school_code", required=True)
        number = c.cell("number", required=True)
        if code and code not in school_codes:
            c.problem("school_code", f"unknown school code '{code}'")
        fields = {name: c.cell(name) for name in ("name", "floor") if c.has(name)}
        if c.has("kind"):
            value = c.cell("kind").lower() or "classroom"
            c.choice(("kind",), value, ROOM_KINDS, "kind")
            fields["kind"] = value
        if c.has("capacity"):
            fields["capacity"] = _capacity(c)
        if code and number:
            # Case-insensitively, so "101a" and "101A" are caught as the same room before the
            # database or a teacher's check-in has to guess which one is meant.
            folded = (code, number.casefold())
            if folded in seen:
                c.problem("number", f"duplicate room number '{number}' in school {code} "
                                    f"(also on line {seen[folded]})")
            else:
                seen[folded] = row.line
            existing = db_folded.get(folded)
            if existing is not None and existing != number:
                c.problem("number", f"school {code} already has room '{existing}'; write it the same way")
        if c.ok:
            out.append(_In(row.line, (code, number), fields))
    return out


def _capacity(c: _Checker) -> int | None:
    value = c.cell("capacity")
    if not value:
        return None
    if not _DIGITS.fullmatch(value):
        c.problem("capacity", f"must be a whole number of 0 or more, got '{value}'")
        return None
    if int(value) > MAX_INTEGER:
        c.problem("capacity", f"must be at most {MAX_INTEGER}, got '{value}'")
        return None
    return int(value)


def _check_contacts(kind: str, rows: list[_Row], problems: _Problems, region: str, school_codes: set[str],
                    room_keys: set[tuple[str, str]]) -> list[_In]:
    """People and partners: the same contact columns, the same duplicate rules."""
    out: list[_In] = []
    seen: dict[str, dict[str, int]] = {"email": {}, "mobile": {}}
    for row in rows:
        c = _Checker(kind, row, problems, region)
        fields: dict = {}
        if kind == "partners":
            fields["agency"] = c.cell("agency", required=True)
        fields["name"] = c.cell("name", required=True)
        roles = PERSON_ROLES if kind == "people" else PARTNER_KINDS
        fields["role"] = c.choice_in("role", roles, "role")
        fields["mobile"], fields["email"] = c.mobile(), c.email()
        if c.has("mobile") and c.has("email") and not row.values["mobile"] and not row.values["email"]:
            c.problem("email", "is empty, and so is mobile: give at least one")
        for column in ("email", "mobile"):
            value = fields[column]
            if value is None:
                continue
            if value in seen[column]:
                c.problem(column, f"duplicate {column} {value} (also on line {seen[column][value]})")
            else:
                seen[column][value] = row.line
        schools = c.codes("schools", school_codes)
        fields["schools"] = schools
        if not schools and c.has("schools") and fields["role"] != DISTRICT_ADMIN:
            c.problem("schools", "is empty (only district admins may belong to no school)")
        if c.has("home_room"):
            fields["home_room"] = None
            number = c.cell("home_room")
            if number and not schools:
                c.problem("home_room", "needs a school: the home room is looked up in the first school")
            elif number and schools[0] in school_codes:
                if (schools[0], number) not in room_keys:
                    c.problem("home_room", f"unknown room '{number}' in school {schools[0]}")
                fields["home_room"] = (schools[0], number)
        if c.has("active"):
            fields["active"] = c.active()
        if c.ok:
            out.append(_In(row.line, (fields["email"], fields["mobile"]), fields))
    return out


def _match_contacts(kind: str, rows: list[_In], existing: list, problems: _Problems) -> list:
    """The existing person or partner each row updates (by email, else mobile), or None for new ones."""
    by_email = {o.email.lower(): o for o in existing if o.email}
    by_mobile = {o.mobile: o for o in existing if o.mobile}
    claimed: dict[int, int] = {}
    matches: list = []
    for row in rows:
        email, mobile = row.key
        owner = by_email.get(email) if email else None
        how = "email"
        if owner is None and mobile:
            owner, how = by_mobile.get(mobile), "mobile"
        if owner is not None and owner.id in claimed:
            value = email if how == "email" else mobile
            problems.add(kind, row.line, how, f"{value} belongs to {owner.name}, who is already updated "
                                              f"by line {claimed[owner.id]}")
        elif owner is not None:
            claimed[owner.id] = row.line
        matches.append(owner)
    # A value a row takes must not stay with someone the files leave untouched.
    untouched = [o for o in existing if o.id not in claimed]
    held = {("email", o.email.lower()): o for o in untouched if o.email}
    held.update({("mobile", o.mobile): o for o in untouched if o.mobile})
    for row in rows:
        for column, value in zip(("email", "mobile"), row.key, strict=True):
            other = held.get((column, value)) if value else None
            if other is not None:
                problems.add(kind, row.line, column, f"{value} already belongs to {other.name}, "
                                                     f"who is not in {FILES[kind]}")
    return matches


# ------------------------------------------------------------------------------------------ importing

def import_directory(session: Session, folder: str | Path, *, dry_run: bool = False,
                     region: str = "US") -> ImportReport:
    """Check the CSV files in `folder`, then apply them in one transaction; raise ImportFailed otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportFailed([f"{folder}: is not a folder"])
    problems = _Problems()
    files = {kind: _read(folder, kind, problems) for kind in KINDS}
    if all(rows is None for rows in files.values()):
        raise ImportFailed([f"{folder}: has none of {', '.join(FILES.values())}"])

    db_schools = {s.code: s for s in session.scalars(select(School))}
    db_rooms = {(r.school.code, r.number): r
                for r in session.scalars(select(Room).options(selectinload(Room.school)))}
    people = list(session.scalars(select(Person).options(
        selectinload(Person.schools), selectinload(Person.home_room).selectinload(Room.school))))
    partners = list(session.scalars(select(Partner).options(selectinload(Partner.schools))))

    schools_in = _check_schools(files["schools"] or [], problems, region)
    school_codes = set(db_schools) | {_code(r) for r in files["schools"] or [] if _code(r)}
    rooms_in = _check_rooms(files["rooms"] or [], problems, region, school_codes, db_rooms)
    room_keys = set(db_rooms) | {(r.values.get("school_code", ""), r.values.get("number", ""))
                                 for r in files["rooms"] or []}
    people_in = _check_contacts("people", files["people"] or [], problems, region, school_codes, room_keys)
    partners_in = _check_contacts("partners", files["partners"] or [], problems, region, school_codes,
                                  room_keys)
    people_match = _match_contacts("people", people_in, people, problems)
    partners_match = _match_contacts("partners", partners_in, partners, problems)
    if problems:
        raise ImportFailed(problems.messages())

    report = ImportReport(dry_run=dry_run)
    plan = _Plan(report, db_schools, db_rooms)
    plan.schools(schools_in)
    plan.rooms(rooms_in)
    plan.contacts("people", people_in, people_match)
    plan.contacts("partners", partners_in, partners_match)
    try:
        # All or nothing within the caller's transaction. A dry run writes too and then rolls back its
        # savepoint, so the database refuses exactly what it would refuse in the real import, and the
        # two never disagree.
        with session.begin_nested() as applying:
            plan.apply(session)
            session.flush()
            if dry_run:
                applying.rollback()
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise ImportFailed([f"(database): {reason}; nothing was imported"]) from exc
    return report


def _code(row: _Row) -> str:
    return row.values.get("code", "")


def _show(value) -> str:
    if value is None or value == "" or value == []:
        return "(empty)"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, tuple):
        return " ".join(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _private(column: str, value):
    # The change list is printed and pasted into tickets; staff mobiles are private.
    return mask_phone(value) if column == "mobile" else value


class _Plan:
    """The changes the checked rows make, worked out against the database before anything is written."""

    def __init__(self, report: ImportReport, db_schools: dict[str, School],
                 db_rooms: dict[tuple[str, str], Room]):
        self.report, self.db_schools, self.db_rooms = report, db_schools, db_rooms
        self.steps: list[tuple[str, object, _In]] = []

    def _count(self, kind: str, label: str, current: dict | None, fields: dict) -> bool:
        """Record one row's outcome; True when it creates or changes something."""
        if current is None:
            self.report.created[kind] += 1
            self.report.changes.append(f"create {label}")
            return True
        diffs = [f"{name} {_show(_private(name, current[name]))} -> {_show(_private(name, value))}"
                 for name, value in fields.items() if current[name] != value]
        if not diffs:
            self.report.unchanged[kind] += 1
            return False
        self.report.updated[kind] += 1
        self.report.changes.append(f"update {label}: {', '.join(diffs)}")
        return True

    def schools(self, rows: list[_In]) -> None:
        for row in rows:
            school = self.db_schools.get(row.key[0])
            current = None if school is None else {name: getattr(school, name) for name in row.fields}
            if self._count("schools", f"school {row.key[0]} ({row.fields['name']})", current, row.fields):
                self.steps.append(("schools", school, row))

    def rooms(self, rows: list[_In]) -> None:
        for row in rows:
            room = self.db_rooms.get(row.key)
            current = None if room is None else {name: getattr(room, name) for name in row.fields}
            if self._count("rooms", f"room {row.key[0]} {row.key[1]}", current, row.fields):
                self.steps.append(("rooms", room, row))

    def contacts(self, kind: str, rows: list[_In], matches: list) -> None:
        noun = "person" if kind == "people" else "partner"
        for row, owner in zip(rows, matches, strict=True):
            current = None if owner is None else _contact_fields(owner, row.fields)
            label = f"{noun} {row.fields['name']} <{row.fields['email'] or mask_phone(row.fields['mobile'])}>"
            compare = dict(row.fields)
            if "schools" in compare:
                # Membership is a set; only the first school matters, and only for the home room.
                compare["schools"] = sorted(compare["schools"])
            if self._count(kind, label, current, compare):
                self.steps.append((kind, owner, row))

    def apply(self, session: Session) -> None:
        """Write the planned changes to the session (the caller commits)."""
        schools = dict(self.db_schools)
        rooms = dict(self.db_rooms)
        contacts = [(kind, owner, row) for kind, owner, row in self.steps if kind in ("people", "partners")]
        # Emails and mobiles are unique: clear the ones that change first, so two people can swap
        # numbers without the database seeing a duplicate half-way through.
        cleared = False
        for _kind, owner, row in contacts:
            for column in ("email", "mobile"):
                if owner is not None and getattr(owner, column) != row.fields[column]:
                    setattr(owner, column, None)
                    cleared = True
        if cleared:
            session.flush()
        for kind, obj, row in self.steps:
            if kind == "schools":
                school = obj or School(code=row.key[0])
                _set(school, row.fields)
                session.add(school)
                schools[row.key[0]] = school
            elif kind == "rooms":
                room = obj or Room(school=schools[row.key[0]], number=row.key[1])
                _set(room, row.fields)
                session.add(room)
                rooms[row.key] = room
            else:
                model = Person if kind == "people" else Partner
                owner = obj or model()
                fields = dict(row.fields)
                owner.schools = [schools[code] for code in fields.pop("schools")]
                if "home_room" in fields:
                    key = fields.pop("home_room")
                    owner.home_room = rooms[key] if key else None
                _set(owner, fields)
                session.add(owner)
        session.flush()


def _set(obj, fields: dict) -> None:
    for name, value in fields.items():
        setattr(obj, name, value)


def _contact_fields(owner: Person | Partner, fields: dict) -> dict:
    current = {name: getattr(owner, name) for name in fields if name not in ("schools", "home_room")}
    current["schools"] = sorted(s.code for s in owner.schools)
    if "home_room" in fields:
        room = owner.home_room
        current["home_room"] = (room.school.code, room.number) if room else None
    return current


# ------------------------------------------------------------------------------------------ exporting

def export_directory(session: Session, folder: str | Path) -> dict[str, int]:
    """Write the four CSV files to `folder`, in the format the import reads; return rows per file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    schools = sorted(session.scalars(select(School)), key=lambda s: s.code)
    rooms = sorted(session.scalars(select(Room).options(selectinload(Room.school))),
                   key=lambda r: (r.school.code, _natural(r.number)))
    people = sorted(session.scalars(select(Person).options(
        selectinload(Person.schools), selectinload(Person.home_room).selectinload(Room.school))),
        key=_contact_order)
    partners = sorted(session.scalars(select(Partner).options(selectinload(Partner.schools))),
                      key=lambda p: (p.agency.casefold(), *_contact_order(p)))
    rows = {
        "schools": [[s.code, s.name, s.address or "", s.timezone, s.dismissal_time or "",
                     s.sourced_id or ""] for s in schools],
        "rooms": [[r.school.code, r.number, r.name or "", r.floor or "", r.kind,
                   "" if r.capacity is None else str(r.capacity)] for r in rooms],
        "people": [[p.name, p.role, p.mobile or "", p.email or "", _school_list(p),
                    p.home_room.number if p.home_room else "", _show(p.active)] for p in people],
        "partners": [[p.agency, p.name, p.role, p.mobile or "", p.email or "", _school_list(p),
                      _show(p.active)] for p in partners],
    }
    written = {}
    for kind in KINDS:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS[kind])
        writer.writerows([escape_formula(cell) for cell in row] for row in rows[kind])
        (folder / FILES[kind]).write_text(buffer.getvalue(), encoding="utf-8")
        written[FILES[kind]] = len(rows[kind])
    return written


def _school_list(owner: Person | Partner) -> str:
    codes = sorted(s.code for s in owner.schools)
    room = getattr(owner, "home_room", None)
    if room is not None:
        # The import reads the home room in the first school listed, so that school goes first.
        home = room.school.code
        codes = [home] + [code for code in codes if code != home]
    return ";".join(codes)


def _contact_order(owner: Person | Partner) -> tuple:
    return owner.name.casefold(), owner.email or "", owner.mobile or ""


def _natural(text: str) -> tuple:
    """Sort key that puts room 9 before room 10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                 for part in re.findall(r"\d+|\D+", text))
