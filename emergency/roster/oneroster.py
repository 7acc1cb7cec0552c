"""Import a OneRoster 1.1 or 1.2 CSV export: all or nothing, every problem as `file:line: column: reason`.

What is kept: students (names, SIS number, grade) of our schools, class sections (room, periods,
homeroom or not), and who is enrolled in each (students, and teachers matched to our staff by
email). Parents, demographics, courses and terms are read for their format only and not stored:
§2-d asks for the least student data that does the job.

Matching: an org of type `school` is one of our schools when its sourcedId is the school's
`sourced_id` (schools.csv), or its identifier is the school's code. A class's `location` is a room of
its school by number or name ("Room 204" finds 204). Orgs and users we do not match are skipped and
listed as notes, not problems: a district export covers more than the schools using this service.

Re-import: rows are matched by sourcedId. `status` `tobedeleted` deactivates; in a `bulk` file, what
the file no longer lists (within the schools it covers) is deactivated too; in a `delta` file, what
it does not list is left alone. Nothing is deleted, so past runs keep their students.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from emergency.csvfiles import ImportFailed, ImportReport, Problems, Row, read_rows
from emergency.directory.models import Person, Room, School
from emergency.roster.models import STUDENT, TEACHER, Enrollment, RosterClass, RosterTeacher, Student
from emergency.timeutil import utcnow

MANIFEST = "manifest.csv"
BULK, DELTA, ABSENT = "bulk", "delta", "absent"
ACTIVE_STATUS, TO_BE_DELETED = "active", "tobedeleted"

_BASE = ("sourcedId", "status", "dateLastModified")
COLUMNS = {
    "orgs": (*_BASE, "name", "type", "identifier", "parentSourcedId"),
    "academicSessions": (*_BASE, "title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"),
    "courses": (*_BASE, "schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects",
                "subjectCodes"),
    "classes": (*_BASE, "title", "grades", "courseSourcedId", "classCode", "classType", "location",
                "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods"),
    "users": (*_BASE, "enabledUser", "orgSourcedIds", "role", "username", "userIds", "givenName", "familyName",
              "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades", "password",
              "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName", "preferredMiddleName",
              "preferredFamilyName", "primaryOrgSourcedId", "pronouns"),
    "roles": (*_BASE, "userSourcedId", "roleType", "role", "orgSourcedId", "userProfileSourcedId", "beginDate",
              "endDate"),
    "enrollments": (*_BASE, "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate",
                    "endDate"),
    "demographics": _BASE,
}
REQUIRED = {
    "orgs": ("sourcedId", "name", "type"),
    "academicSessions": ("sourcedId",),
    "courses": ("sourcedId",),
    "classes": ("sourcedId", "title", "classType", "schoolSourcedId"),
    "users": ("sourcedId", "givenName", "familyName"),
    "roles": ("userSourcedId", "role", "orgSourcedId"),
    "enrollments": ("sourcedId", "classSourcedId", "userSourcedId", "role"),
    "demographics": ("sourcedId",),
}
FILES = {kind: f"{kind}.csv" for kind in COLUMNS}
KINDS = ("students", "classes", "enrollments")
CLASS_TYPES = ("homeroom", "scheduled")
_ROOM_PREFIX = re.compile(r"^(room|rm\.?|classroom)\s*#?\s*", re.IGNORECASE)


class RosterImportFailed(ImportFailed):
    files = "roster files"


@dataclass
class RosterReport(ImportReport):
    """What an import changed (or would change), and what it skipped and why; never a student's name."""

    KINDS: ClassVar[tuple[str, ...]] = KINDS
    COUNTS: ClassVar[tuple[str, ...]] = ("created", "updated", "deactivated", "unchanged")
    IMPORTED: ClassVar[str] = "Imported the roster."

    version: str = ""
    modes: dict[str, str] = field(default_factory=dict)
    deactivated: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        files = ", ".join(f"{FILES[k]} ({mode})" for k, mode in self.modes.items())
        return [f"  OneRoster {self.version}: {files}"]

    def detail_lines(self) -> list[str]:
        return ["Notes:", *(f"  {note}" for note in self.notes)] if self.notes else []


# ------------------------------------------------------------------------------------------ reading

def _read_manifest(folder: Path, problems: Problems) -> tuple[str, dict[str, str]]:
    """The OneRoster version and the mode (bulk, delta) of each file the manifest says is present."""
    rows = read_rows(folder / MANIFEST, problems, ("propertyName", "value"), ("propertyName", "value"))
    if rows is None:
        problems.add(MANIFEST, 1, "(file)", "is missing: a OneRoster export starts with manifest.csv")
        return "", {}
    version, modes, version_line = "", {}, 1
    for row in rows:
        name, value = row.values.get("propertyName", ""), row.values.get("value", "").lower()
        if name == "oneroster.version":
            version, version_line = value, row.line
        elif name.startswith("file."):
            kind = name[len("file."):]
            if kind not in FILES:
                problems.add(MANIFEST, row.line, "propertyName", f"unknown file '{kind}'")
            elif value not in (BULK, DELTA, ABSENT):
                problems.add(MANIFEST, row.line, "value", f"must be bulk, delta or absent, got '{value}'")
            elif value != ABSENT:
                if not (folder / FILES[kind]).is_file():
                    problems.add(MANIFEST, row.line, "value", f"says {FILES[kind]} is {value}, but the folder "
                                                              "has no such file")
                modes[kind] = value
    if version not in ("1.1", "1.2"):
        problems.add(MANIFEST, version_line, "value" if version else "propertyName",
                     f"oneroster.version must be 1.1 or 1.2, got '{version}'" if version
                     else "oneroster.version is missing")
    return version, modes


def _check_base(file: str, rows: list[Row], mode: str, problems: Problems) -> dict[str, Row]:
    """Rows by sourcedId; checks status and duplicate ids."""
    by_id: dict[str, Row] = {}
    for row in rows:
        sourced_id = row.values.get("sourcedId", "")
        status = row.values.get("status", "").lower()
        if not sourced_id:
            problems.add(file, row.line, "sourcedId", "is empty")
        elif sourced_id in by_id:
            problems.add(file, row.line, "sourcedId", f"duplicate sourcedId '{sourced_id}' "
                                                      f"(also on line {by_id[sourced_id].line})")
        else:
            by_id[sourced_id] = row
        if mode == DELTA and status not in (ACTIVE_STATUS, TO_BE_DELETED):
            problems.add(file, row.line, "status", f"a delta file needs active or tobedeleted, got '{status}'")
        elif mode == BULK and status not in ("", ACTIVE_STATUS, TO_BE_DELETED):
            problems.add(file, row.line, "status", f"must be active or tobedeleted, got '{status}'")
    return by_id


def _active(row: Row) -> bool:
    return row.values.get("status", "").lower() != TO_BE_DELETED


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# ----------------------------------------------------------------------------------------- importing

class _Import:
    """One import: the files read, the database state, the plan; every problem found on the way."""

    def __init__(self, session: Session, folder: Path, report: RosterReport):
        self.session, self.folder, self.report = session, folder, report
        self.problems = Problems([MANIFEST, *FILES.values()])
        self.rows: dict[str, dict[str, Row]] = {}
        self.pending_school_ids: dict[int, str] = {}  # our school id -> the org sourcedId it gets

    def note(self, text: str) -> None:
        if text not in self.report.notes:
            self.report.notes.append(text)

    def read(self) -> bool:
        """Read the files the manifest lists; False when the manifest itself is wrong (nothing else is read)."""
        version, modes = _read_manifest(self.folder, self.problems)
        self.report.version, self.report.modes = version, modes
        if self.problems:
            return False
        for kind, mode in modes.items():
            if kind == "roles" and version == "1.1":
                self.problems.add(MANIFEST, 1, "value", "roles.csv is OneRoster 1.2; the manifest says 1.1")
            rows = read_rows(self.folder / FILES[kind], self.problems, COLUMNS[kind], REQUIRED[kind],
                             unknown_columns="ignore")
            if rows is None:
                continue
            if kind == "roles":
                self.rows[kind] = {f"#{row.line}": row for row in rows}  # roles may repeat a user
            else:
                self.rows[kind] = _check_base(FILES[kind], rows, mode, self.problems)
        if version == "1.1" and "users" in self.rows:
            for column in ("role", "orgSourcedIds"):
                header_has = any(column in row.values for row in self.rows["users"].values())
                if self.rows["users"] and not header_has:
                    self.problems.add("users.csv", 1, column, "required column is missing (OneRoster 1.1)")
        return True

    # -- orgs -> schools
    def schools(self) -> dict[str, School | None]:
        """Every org sourcedId we know of -> our school, or None for an org we do not serve."""
        schools = list(self.session.scalars(select(School)))
        by_sourced = {s.sourced_id: s for s in schools if s.sourced_id}
        by_code = {s.code.casefold(): s for s in schools}
        orgs: dict[str, School | None] = dict(by_sourced)
        for sourced_id, row in self.rows.get("orgs", {}).items():
            if row.values.get("type", "").lower() != "school":
                orgs.setdefault(sourced_id, None)
                continue
            identifier = row.values.get("identifier", "")
            school = by_sourced.get(sourced_id) or by_code.get(identifier.casefold()) or by_sourced.get(identifier)
            if school is None:
                self.note(f"orgs.csv:{row.line}: school org {sourced_id} matches no school (set its sourcedId "
                          "as sourced_id in schools.csv); its classes and students are skipped")
            elif school.sourced_id not in (None, sourced_id) and by_sourced.get(sourced_id) is None:
                self.problems.add("orgs.csv", row.line, "sourcedId",
                                  f"school {school.code} already has sourcedId {school.sourced_id}")
            else:
                self.pending_school_ids[school.id] = sourced_id
            orgs[sourced_id] = school
        return orgs

    # -- users -> students and teachers
    def users(self, orgs: dict[str, School | None]) -> tuple[dict[str, dict], dict[str, Person | None]]:
        """Students to store (by sourcedId) and teachers matched to our people (None: not matched)."""
        version = self.report.version
        roles: dict[str, list[tuple[str, str, int]]] = {}
        for row in self.rows.get("roles", {}).values():
            roles.setdefault(row.values["userSourcedId"], []).append(
                (row.values.get("role", "").lower(), row.values.get("orgSourcedId", ""), row.line))
        people = {p.email.lower(): p for p in self.session.scalars(select(Person)) if p.email}
        students: dict[str, dict] = {}
        teachers: dict[str, Person | None] = {}
        for sourced_id, row in self.rows.get("users", {}).items():
            if version == "1.1":
                role = row.values.get("role", "").lower()
                org_ids = _split(row.values.get("orgSourcedIds", ""))
            else:
                user_roles = roles.get(sourced_id, [])
                role = next((r for r, _o, _l in user_roles if r in (STUDENT, TEACHER)),
                            user_roles[0][0] if user_roles else "")
                org_ids = [o for r, o, _l in user_roles if r == role]
                primary = row.values.get("primaryOrgSourcedId", "")
                if primary and primary in org_ids:
                    org_ids = [primary] + [o for o in org_ids if o != primary]
            unknown = [o for o in org_ids if o not in orgs]
            if unknown and role in (STUDENT, TEACHER):
                self.problems.add("users.csv", row.line, "orgSourcedIds" if version == "1.1" else "sourcedId",
                                  f"unknown org {', '.join(unknown)} (not in orgs.csv nor matched before)")
                continue
            if role == STUDENT:
                school = next((orgs[o] for o in org_ids if orgs.get(o) is not None), None)
                if school is None:
                    continue  # a student of a school we do not serve
                given, family = row.values.get("givenName", ""), row.values.get("familyName", "")
                given = row.values.get("preferredGivenName") or given
                family = row.values.get("preferredFamilyName") or family
                if not given or not family:
                    self.problems.add("users.csv", row.line, "givenName" if not given else "familyName", "is empty")
                    continue
                for column, value, limit in (("givenName", given, 100), ("familyName", family, 100),
                                             ("identifier", row.values.get("identifier", ""), 64)):
                    if len(value) > limit:
                        self.problems.add("users.csv", row.line, column, f"is longer than {limit} characters")
                students[sourced_id] = {
                    "school_id": school.id, "given_name": given[:100], "family_name": family[:100],
                    "identifier": row.values.get("identifier", "")[:64],
                    "grade": _split(row.values.get("grades", ""))[0][:16] if row.values.get("grades") else "",
                    "active": _active(row) and row.values.get("enabledUser", "true").lower() != "false"}
            elif role == TEACHER:
                email = row.values.get("email", "").lower()
                teachers[sourced_id] = people.get(email) if email else None
                if teachers[sourced_id] is None:
                    self.note(f"users.csv:{row.line}: teacher {sourced_id} matches no person by email; "
                              "their classes have no teacher here")
        return students, teachers

    # -- classes
    def classes(self, orgs: dict[str, School | None]) -> dict[str, dict]:
        rooms: dict[int, dict[str, int]] = {}
        for room in self.session.execute(select(Room.id, Room.school_id, Room.number, Room.name)):
            known = rooms.setdefault(room.school_id, {})
            known.setdefault(room.number.casefold(), room.id)
            if room.name:
                known.setdefault(room.name.casefold(), room.id)
        classes: dict[str, dict] = {}
        for sourced_id, row in self.rows.get("classes", {}).items():
            org = row.values.get("schoolSourcedId", "")
            if org not in orgs:
                self.problems.add("classes.csv", row.line, "schoolSourcedId", f"unknown org '{org}'")
                continue
            school = orgs[org]
            if school is None:
                continue
            class_type = row.values.get("classType", "").lower()
            if class_type not in CLASS_TYPES:
                self.problems.add("classes.csv", row.line, "classType",
                                  f"must be homeroom or scheduled, got '{class_type}'")
            location = row.values.get("location", "")
            room_id = None
            if location:
                wanted = location.casefold()
                known = rooms.get(school.id, {})
                room_id = known.get(wanted) or known.get(_ROOM_PREFIX.sub("", location).casefold())
                if room_id is None:
                    self.note(f"classes.csv:{row.line}: location '{location}' is not a room of {school.code}; "
                              "the class meets in its teacher's home room")
            title = row.values.get("title", "")
            if len(title) > 200:
                self.problems.add("classes.csv", row.line, "title", "is longer than 200 characters")
            periods = _split(row.values.get("periods", ""))
            if any(len(p) > 32 for p in periods):
                self.problems.add("classes.csv", row.line, "periods", "a period name is longer than 32 characters")
            classes[sourced_id] = {"school_id": school.id, "title": title[:200], "homeroom": class_type == "homeroom",
                                   "room_id": room_id, "periods": periods, "active": _active(row)}
        return classes

    # -- enrollments
    def enrollments(self, classes: dict[str, dict], students: dict[str, dict],
                    teachers: dict[str, Person | None], known: dict[str, dict[str, int]]) -> dict[str, dict]:
        """Enrollments to store; `known` holds the sourcedIds already in the database."""
        file_classes = self.rows.get("classes", {})
        out: dict[str, dict] = {}
        for sourced_id, row in self.rows.get("enrollments", {}).items():
            class_id, user_id = row.values.get("classSourcedId", ""), row.values.get("userSourcedId", "")
            role = row.values.get("role", "").lower()
            if class_id not in file_classes and class_id not in known["classes"]:
                self.problems.add("enrollments.csv", row.line, "classSourcedId", f"unknown class '{class_id}'")
                continue
            if role == STUDENT:
                if user_id not in students and user_id not in known["students"]:
                    if user_id not in self.rows.get("users", {}):
                        self.problems.add("enrollments.csv", row.line, "userSourcedId", f"unknown user '{user_id}'")
                    continue
            elif role == TEACHER:
                if user_id in teachers:
                    if teachers[user_id] is None:
                        continue
                elif user_id not in known["teachers"]:
                    if user_id not in self.rows.get("users", {}):
                        self.problems.add("enrollments.csv", row.line, "userSourcedId", f"unknown user '{user_id}'")
                    continue
            else:
                continue  # administrators, aides, proctors: not who the room's roster is about
            if class_id in file_classes and class_id not in classes:
                continue  # a class of a school we do not serve
            out[sourced_id] = {"class": class_id, "role": role, "user": user_id, "active": _active(row)}
        return out


def import_roster(session: Session, folder: str | Path, *, dry_run: bool = False) -> RosterReport:
    """Check a OneRoster CSV export in `folder`, then apply it in one transaction; raise RosterImportFailed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RosterImportFailed([f"{folder}: is not a folder"])
    report = RosterReport(dry_run=dry_run)
    job = _Import(session, folder, report)
    if not job.read():
        raise RosterImportFailed(job.problems.messages())
    orgs = job.schools()
    students, teachers = job.users(orgs)
    classes = job.classes(orgs)
    known = {
        "students": dict(session.execute(select(Student.sourced_id, Student.id)).all()),
        "classes": dict(session.execute(select(RosterClass.sourced_id, RosterClass.id)).all()),
        "teachers": dict(session.execute(select(RosterTeacher.sourced_id, RosterTeacher.person_id)).all()),
    }
    enrollments = job.enrollments(classes, students, teachers, known)
    if job.problems:
        raise RosterImportFailed(job.problems.messages())
    try:
        # All or nothing within the caller's transaction: a failure, or a dry run, undoes the savepoint.
        with session.begin_nested() as applying:
            _apply(session, report, job, students, teachers, classes, enrollments, orgs)
            if dry_run:
                applying.rollback()
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise RosterImportFailed([f"(database): {reason}; nothing was imported"]) from exc
    return report


def _apply(session: Session, report: RosterReport, job: _Import, students: dict, teachers: dict,
           classes: dict, enrollments: dict, orgs: dict) -> None:
    """Write the plan (the caller commits, or rolls back for a dry run); counts go in the report."""
    now = utcnow()
    for school_id, sourced_id in job.pending_school_ids.items():
        session.execute(update(School).where(School.id == school_id).values(sourced_id=sourced_id))
    for sourced_id, person in teachers.items():
        if person is not None:
            session.merge(RosterTeacher(sourced_id=sourced_id, person_id=person.id))
    served = {s.id for s in orgs.values() if s is not None}
    _upsert(session, report, "students", Student, students, now,
            bulk_scope=Student.school_id.in_(served) if report.modes.get("users") == BULK else None)
    _upsert(session, report, "classes", RosterClass, classes, now,
            bulk_scope=RosterClass.school_id.in_(served) if report.modes.get("classes") == BULK else None)
    student_ids = dict(session.execute(select(Student.sourced_id, Student.id)).all())
    class_ids = dict(session.execute(select(RosterClass.sourced_id, RosterClass.id)).all())
    teacher_ids = dict(session.execute(select(RosterTeacher.sourced_id, RosterTeacher.person_id)).all())
    rows = {}
    for sourced_id, e in enrollments.items():
        rows[sourced_id] = {"class_id": class_ids[e["class"]], "role": e["role"], "active": e["active"],
                            "student_id": student_ids.get(e["user"]) if e["role"] == STUDENT else None,
                            "person_id": teacher_ids.get(e["user"]) if e["role"] == TEACHER else None}
    in_served = select(RosterClass.id).where(RosterClass.school_id.in_(served))
    _upsert(session, report, "enrollments", Enrollment, rows, now,
            bulk_scope=Enrollment.class_id.in_(in_served) if report.modes.get("enrollments") == BULK else None)
    session.flush()


def _upsert(session: Session, report: RosterReport, kind: str, model, rows: dict[str, dict], now, *,
            bulk_scope=None) -> None:
    """Create, update or deactivate rows by sourcedId, in bulk statements (30,000 enrollments is normal)."""
    names = list(next(iter(rows.values())).keys()) if rows else []
    columns = [model.__table__.c[name] for name in names]
    existing = {row[1]: row for row in session.execute(select(model.id, model.sourced_id, *columns))}
    creates, updates = [], []
    for sourced_id, values in rows.items():
        current = existing.get(sourced_id)
        if current is None:
            creates.append({"sourced_id": sourced_id, "updated_at": now, **values})
            report.created[kind] += 1
            continue
        old = dict(zip(names, current[2:], strict=True))
        if old == values:
            report.unchanged[kind] += 1
            continue
        updates.append({"id": current[0], "updated_at": now, **values})
        if old.get("active") and not values.get("active"):
            report.deactivated[kind] += 1
        else:
            report.updated[kind] += 1
    if creates:
        session.execute(insert(model), creates)
    if updates:
        session.execute(update(model), updates)
    if bulk_scope is not None:
        # A bulk file is the whole truth for the schools it covers: what it no longer lists is gone.
        stale = [{"id": id_, "active": False, "updated_at": now}
                 for id_, sourced_id in session.execute(select(model.id, model.sourced_id)
                                                        .where(bulk_scope, model.active.is_(True)))
                 if sourced_id not in rows]
        if stale:
            session.execute(update(model), stale)
            report.deactivated[kind] += len(stale)
