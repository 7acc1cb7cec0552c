"""Accountability by student: who is expected where, student-level check-ins, the school's unaccounted list.

Who is expected where is worked out once per run, the first time anyone asks, from the moment the
run started: the period current then (bell schedule) and the classes meeting in it give each room
its students; outside class time (arrival, lunch) or at a school without a schedule, each student's
homeroom does. A student placed nowhere is expected in an "unknown" room and shown as such.

A student-level check-in is an ordinary check-in (accountability.checkins.record_checkin, with counts
derived from the students) followed, at one marked point, by record_students(): the per-student
statuses live in their own table, so the check-in write path and the drill record hold only counts.

§2-d: names leave this module only in API answers to admins, to the teachers of the room, and to
partners in a real run whose playbook allows missing names. Every such answer is logged in
student_data_reads (who, when, which run, how many students), never the names. Pushes, timeline
entries and log lines carry ids and counts only.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from sqlalchemy import case, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emergency.accountability.checkins import CheckinRequest, checkin_view, record_checkin
from emergency.accountability.models import ALL_ACCOUNTED, NEED_HELP, STUDENTS_MISSING
from emergency.db import backend, upsert, write_during_read, writing
from emergency.directory.models import Person, Room, School, room_label
from emergency.directory.principal import Principal
from emergency.errors import Forbidden, NotFound, ValidationFailed
from emergency.roster.models import (
    ABSENT,
    INJURED,
    MISSING,
    PRESENT,
    STUDENT,
    TEACHER,
    Enrollment,
    RosterClass,
    RunRoster,
    RunRosterBuilt,
    Student,
    StudentDataRead,
    StudentStatus,
)
from emergency.roster.schedules import moment
from emergency.runs import timeline
from emergency.runs.models import Run
from emergency.runs.partners import school_roster_for_partner
from emergency.runs.service import get_run
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)

# What the school roll-up says about each student.
ACCOUNTED, NOT_REPORTED = "accounted", "not_reported"
EXCEPTION_STATUSES = (ABSENT, MISSING, INJURED)  # what a teacher taps on an expected student
EXTRA_STATUSES = (PRESENT, INJURED)  # a student from elsewhere who is with them
SEARCH_LIMIT = 20
ROSTER_UPDATED = "roster.updated"


@dataclass
class StudentCheckin:
    """A room's report by student: everyone expected is present except the exceptions; extras are with them."""

    room_id: int | None = None
    exceptions: dict[int, str] = field(default_factory=dict)  # student id -> absent | missing | injured
    extras: dict[int, str] = field(default_factory=dict)  # student id -> present | injured
    need_help: bool = False
    location: str | None = None
    note: str | None = None


# -- who was expected where ----------------------------------------------------------------------
def expected_roster(session: Session, run: Run) -> RunRosterBuilt:
    """Work out (once per run) which students each room expected when the run started."""
    built = session.get(RunRosterBuilt, run.id)
    if built is not None:
        return built
    school = session.get(School, run.school_id)
    now_at = moment(session, school, run.started_at)
    classes = list(session.execute(select(RosterClass.id, RosterClass.room_id, RosterClass.homeroom,
                                          RosterClass.periods)
                                   .where(RosterClass.school_id == run.school_id, RosterClass.active.is_(True))))
    if now_at.period is not None:
        meeting = [c for c in classes if now_at.period in (c.periods or [])]
    else:
        meeting = [c for c in classes if c.homeroom]
    rooms = {c.id: c.room_id for c in meeting}
    # A class with no known room meets in its teacher's home room.
    teacher_rooms = session.execute(select(Enrollment.class_id, Person.home_room_id)
                                    .join(Person, Person.id == Enrollment.person_id)
                                    .where(Enrollment.role == TEACHER, Enrollment.active.is_(True),
                                           Enrollment.class_id.in_([c for c, room in rooms.items() if room is None]),
                                           Person.home_room_id.is_not(None)).order_by(Enrollment.id))
    for class_id, home_room_id in teacher_rooms:
        rooms[class_id] = rooms[class_id] or home_room_id
    placed: dict[int, tuple[int | None, int]] = {}
    for student_id, class_id in session.execute(
            select(Enrollment.student_id, Enrollment.class_id).join(Student, Student.id == Enrollment.student_id)
            .where(Enrollment.role == STUDENT, Enrollment.active.is_(True), Student.active.is_(True),
                   Enrollment.class_id.in_(list(rooms))).order_by(Enrollment.class_id, Enrollment.id)):
        placed.setdefault(student_id, (rooms[class_id], class_id))
    everyone = session.scalars(select(Student.id).where(Student.school_id == run.school_id,
                                                        Student.active.is_(True)))
    rows = [{"run_id": run.id, "student_id": sid, "room_id": placed.get(sid, (None, None))[0],
             "class_id": placed.get(sid, (None, None))[1]} for sid in everyone]
    built = RunRosterBuilt(run_id=run.id, period=now_at.period, day_type=now_at.day_type, built_at=utcnow())
    session.commit()  # ends the read transaction (of a GET): the rows are written in a transaction of their own
    with writing():
        try:
            session.add(built)
            session.flush()
            if rows:
                session.execute(insert(RunRoster), rows)
            session.commit()  # worked out once for everyone: durable before any answer relies on it
        except IntegrityError:
            session.rollback()  # another request worked it out at the same moment: the same answer
            built = session.get(RunRosterBuilt, run.id)
    return built


# -- access ---------------------------------------------------------------------------------------
def _staff_run(session: Session, principal: Principal, run_id: int) -> Run:
    if principal.is_partner:
        raise Forbidden("Partners have read-only access: only school staff can do that.")
    return get_run(session, principal, run_id)


def _teaches_room(session: Session, principal: Principal, run: Run, room_id: int) -> bool:
    """Whether the caller teaches a class expected in the room in this run, or it is their home room."""
    if principal.home_room_id == room_id:
        return True
    return session.scalar(select(func.count()).select_from(RunRoster).join(
        Enrollment, Enrollment.class_id == RunRoster.class_id).where(
        RunRoster.run_id == run.id, RunRoster.room_id == room_id, Enrollment.role == TEACHER,
        Enrollment.person_id == principal.id, Enrollment.active.is_(True))) > 0


def _current_room(session: Session, principal: Principal, run: Run) -> int | None:
    """The room of the class the caller teaches in this run's period, else their home room."""
    room_id = session.scalar(select(RunRoster.room_id).join(Enrollment, Enrollment.class_id == RunRoster.class_id)
                             .where(RunRoster.run_id == run.id, RunRoster.room_id.is_not(None),
                                    Enrollment.role == TEACHER, Enrollment.person_id == principal.id,
                                    Enrollment.active.is_(True)).limit(1))
    return room_id or principal.home_room_id


def _room(session: Session, run: Run, room_id: int | None) -> Room:
    if room_id is None:
        raise ValidationFailed("Say which room: you teach no class now and have no home room.",
                               errors={"room_id": ["required: you teach no class now and have no home room"]})
    room = session.get(Room, room_id)
    if room is None or room.school_id != run.school_id:
        raise ValidationFailed(f"Room {room_id} is not a room of {run.school.name}.",
                               errors={"room_id": [f"not a room of {run.school.name}"]})
    return room


def log_read(session: Session, principal: Principal, run: Run, what: str, students: int) -> None:
    """§2-d: record who read a student-level list (never the names), committed before the answer leaves.

    One row per answer, however many students it names (db.write_during_read: on PostgreSQL it joins
    the request's transaction; SQLite commits it in one of its own).
    """
    entry = StudentDataRead(at=utcnow(), account_id=principal.account_id, actor_kind=principal.kind,
                            actor_id=principal.id, actor_name=principal.name[:200], role=principal.role,
                            school_id=run.school_id, run_id=run.id, what=what, students=students)
    write_during_read(session, entry)


def _student_ref(student, *, expected_room: dict | None = None) -> dict:
    name = f"{student.given_name} {student.family_name}".strip()
    return {"id": student.id, "name": name, "grade": student.grade, "expected_room": expected_room}


def _room_refs(session: Session, school_id: int) -> dict[int, dict]:
    return {r.id: {"id": r.id, "number": r.number, "label": room_label(r.number, r.name)}
            for r in session.execute(select(Room.id, Room.number, Room.name).where(Room.school_id == school_id))}


# -- a teacher's room -------------------------------------------------------------------------------
def room_roster(session: Session, principal: Principal, run_id: int, room_id: int | None = None) -> dict:
    """The students a room expected (pre-filled present) and the students it reported from elsewhere."""
    run = _staff_run(session, principal, run_id)
    built = expected_roster(session, run)
    room = _room(session, run, room_id if room_id is not None else _current_room(session, principal, run))
    if not (principal.is_admin_of(run.school_id) or _teaches_room(session, principal, run, room.id)):
        raise Forbidden("Only the school's admins and the teachers of this room see its students.")
    rooms = _room_refs(session, run.school_id)
    statuses = {row.student_id: row for row in session.scalars(
        select(StudentStatus).where(StudentStatus.run_id == run.id))}
    expected = session.execute(select(Student.id, Student.given_name, Student.family_name, Student.grade)
                               .join(RunRoster, RunRoster.student_id == Student.id)
                               .where(RunRoster.run_id == run.id, RunRoster.room_id == room.id)
                               .order_by(Student.family_name, Student.given_name)).all()
    expected_ids = {s.id for s in expected}
    extra_ids = [sid for sid, row in statuses.items() if row.room_id == room.id and sid not in expected_ids]
    extras = session.execute(select(Student.id, Student.given_name, Student.family_name, Student.grade,
                                    RunRoster.room_id).outerjoin(RunRoster, (RunRoster.student_id == Student.id)
                                                                 & (RunRoster.run_id == run.id))
                             .where(Student.id.in_(extra_ids)).order_by(Student.family_name)).all()

    def view(student, expected_room_id):
        row = statuses.get(student.id)
        return {**_student_ref(student, expected_room=rooms.get(expected_room_id)),
                "status": row.status if row is not None and row.room_id == room.id else None,
                "reported_by_room": rooms.get(row.room_id) if row is not None else None}

    answer = {"run_id": run.id, "room": rooms[room.id], "period": built.period, "day_type": built.day_type,
              "students": [view(s, room.id) for s in expected],
              "extras": [view(s, s.room_id) for s in extras]}
    log_read(session, principal, run, "room_roster", len(expected) + len(extras))
    return answer


def search_students(session: Session, principal: Principal, run_id: int, query: str) -> dict:
    """Students of the run's school whose name starts with or contains `query` (staff only, at most 20)."""
    run = _staff_run(session, principal, run_id)
    expected_roster(session, run)
    words = query.split()
    if len("".join(words)) < 2:
        raise ValidationFailed("Type at least 2 letters of the student's name.",
                               errors={"q": ["at least 2 letters"]})
    condition = [or_(func.lower(Student.given_name).contains(word.lower(), autoescape=True),
                     func.lower(Student.family_name).contains(word.lower(), autoescape=True)) for word in words]
    found = session.execute(select(Student.id, Student.given_name, Student.family_name, Student.grade,
                                   RunRoster.room_id)
                            .outerjoin(RunRoster, (RunRoster.student_id == Student.id) & (RunRoster.run_id == run.id))
                            .where(Student.school_id == run.school_id, Student.active.is_(True), *condition)
                            .order_by(Student.family_name, Student.given_name).limit(SEARCH_LIMIT)).all()
    rooms = _room_refs(session, run.school_id)
    answer = {"run_id": run.id, "students": [_student_ref(s, expected_room=rooms.get(s.room_id)) for s in found]}
    log_read(session, principal, run, "student_search", len(found))
    return answer


# -- student-level check-in ------------------------------------------------------------------------
def check_in_students(session: Session, principal: Principal, run_id: int, request: StudentCheckin, *,
                      idempotency_key: str | None = None) -> tuple[dict, bool]:
    """Report a room by student; the counts are derived, the room's check-in recorded, each student's status kept."""
    run = _staff_run(session, principal, run_id)
    expected_roster(session, run)
    room = _room(session, run, request.room_id if request.room_id is not None
                 else _current_room(session, principal, run))
    expected = set(session.scalars(select(RunRoster.student_id).where(RunRoster.run_id == run.id,
                                                                      RunRoster.room_id == room.id)))
    statuses = _check_students(session, run, request, expected)
    counts = {"present": sum(s in (PRESENT, INJURED) for s in statuses.values()),
              "absent": sum(s == ABSENT for s in statuses.values()),
              "missing": sum(s == MISSING for s in statuses.values()),
              "injured": sum(s == INJURED for s in statuses.values()),
              "extra": len(request.extras)}
    status = NEED_HELP if request.need_help else STUDENTS_MISSING if counts["missing"] else ALL_ACCOUNTED
    checkin, created = record_checkin(session, run, principal, CheckinRequest(
        status=status, room_id=room.id, location=request.location, note=request.note, **counts),
        channel="app", idempotency_key=idempotency_key)
    if created:
        # The one point where student-level statuses join the check-in path (see the module docstring).
        record_students(session, run, checkin.id, room, principal.id, statuses)
    view = checkin_view(checkin, names=False)
    view["students"] = counts
    return view, created


def _check_students(session: Session, run: Run, request: StudentCheckin, expected: set[int]) -> dict[int, str]:
    """Every student the report covers and their status; refuses unknown students and contradictions."""
    errors: dict[str, list[str]] = {}
    for sid, status in request.exceptions.items():
        if sid not in expected:
            errors.setdefault("exceptions", []).append(f"student {sid} is not expected in this room; "
                                                       "report them as an extra")
        elif status not in EXCEPTION_STATUSES:
            errors.setdefault("exceptions", []).append(f"student {sid}: status must be one of "
                                                       f"{', '.join(EXCEPTION_STATUSES)}")
    for sid, status in request.extras.items():
        if sid in expected:
            errors.setdefault("extras", []).append(f"student {sid} is on this room's roster already")
        elif status not in EXTRA_STATUSES:
            errors.setdefault("extras", []).append(f"student {sid}: status must be present or injured")
    unknown = set(request.extras) - set(session.scalars(select(Student.id).where(
        Student.id.in_(list(request.extras)), Student.school_id == run.school_id, Student.active.is_(True))))
    if unknown:
        errors.setdefault("extras", []).append(f"not students of {run.school.name}: "
                                               f"{', '.join(str(s) for s in sorted(unknown))}")
    if errors:
        raise ValidationFailed("The student report is not valid: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in sorted(errors.items())), errors=errors)
    statuses = dict.fromkeys(expected, PRESENT)
    statuses.update(request.exceptions)
    statuses.update(request.extras)
    return statuses


def record_students(session: Session, run: Run, checkin_id: int, room: Room, person_id: int,
                    statuses: dict[int, str]) -> None:
    """Keep each student's latest status; a student last reported by another room is flagged. Pushes counts."""
    now = utcnow()
    # Sorted, so two rooms reporting the same students at once lock their rows in the same order.
    rows = [{"run_id": run.id, "student_id": sid, "status": statuses[sid], "room_id": room.id,
             "checkin_id": checkin_id, "person_id": person_id, "reported_at": now,
             "conflict_room_id": None, "conflict_status": None} for sid in sorted(statuses)]
    if rows:
        session.execute(_upsert_statuses(backend(session)), rows)
    summary = unaccounted_counts(session, run)
    timeline.push_only(session, run, ROSTER_UPDATED, {"room": {"id": room.id, "number": room.number},
                                                      **summary}, partner_visible=False)
    log.info("student statuses of check-in %s recorded: run %s room %s, %s students", checkin_id, run.id,
             room.id, len(statuses))


@cache
def _upsert_statuses(database: str):
    """INSERT a student's status, or replace it; a report from another room than the last one flags it."""
    statuses = StudentStatus.__table__
    statement = upsert(database, statuses)
    new = statement.excluded
    moved = statuses.c.room_id != new.room_id
    return statement.on_conflict_do_update(index_elements=[statuses.c.run_id, statuses.c.student_id], set_={
        **{name: new[name] for name in ("status", "room_id", "checkin_id", "person_id", "reported_at")},
        # SET reads the row as it was: the previous room and status become the conflict.
        "conflict_room_id": case((moved, statuses.c.room_id), else_=statuses.c.conflict_room_id),
        "conflict_status": case((moved, statuses.c.status), else_=statuses.c.conflict_status),
    })


def unaccounted_counts(session: Session, run: Run) -> dict:
    """The school's students by status in a run, in numbers only (safe to push and to show partners)."""
    total = session.scalar(select(func.count()).select_from(RunRoster).where(RunRoster.run_id == run.id)) or 0
    by_status = dict(session.execute(select(StudentStatus.status, func.count()).where(
        StudentStatus.run_id == run.id).group_by(StudentStatus.status)).all())
    conflicts = session.scalar(select(func.count()).select_from(StudentStatus).where(
        StudentStatus.run_id == run.id, StudentStatus.conflict_room_id.is_not(None))) or 0
    reported = sum(by_status.values())
    return {"students": total, "present": by_status.get(PRESENT, 0), "injured": by_status.get(INJURED, 0),
            "absent": by_status.get(ABSENT, 0), "missing": by_status.get(MISSING, 0),
            "not_reported": max(total - reported, 0), "flagged": conflicts,
            "unaccounted": by_status.get(MISSING, 0) + max(total - reported, 0)}


def _counts_of(students: list[dict]) -> dict:
    """unaccounted_counts() from the rows of the school's list, already in hand."""
    counts = dict.fromkeys((ACCOUNTED, INJURED, ABSENT, MISSING, NOT_REPORTED), 0)
    for student in students:
        counts[student["status"]] += 1
    return {"students": len(students), "present": counts[ACCOUNTED], "injured": counts[INJURED],
            "absent": counts[ABSENT], "missing": counts[MISSING], "not_reported": counts[NOT_REPORTED],
            "flagged": sum(s["flagged"] for s in students), "unaccounted": counts[MISSING] + counts[NOT_REPORTED]}


# -- the school's list -----------------------------------------------------------------------------
def school_roster(session: Session, principal: Principal, run_id: int) -> dict:
    """Every student of the school with a status, the flagged and the unaccounted; names for admins only.

    Partners (real runs) get the numbers, and the names of missing students only when the run's
    playbook says `accountability.partner_missing_names: true`.
    """
    run = get_run(session, principal, run_id)
    admin = principal.is_admin_of(run.school_id)
    partner_names = principal.is_partner and bool(run.playbook.get("accountability", {})
                                                  .get("partner_missing_names"))
    if not (admin or principal.is_partner):
        raise Forbidden("The school's student list is for its admins; teachers see their own room.")
    built = expected_roster(session, run)
    answer = {"run_id": run.id, "school_id": run.school_id, "period": built.period, "day_type": built.day_type,
              "names_included": admin}
    if not admin and not partner_names:
        answer["counts"] = unaccounted_counts(session, run)
        return school_roster_for_partner(answer)
    rooms = _room_refs(session, run.school_id)
    rows = session.execute(
        select(Student.id, Student.given_name, Student.family_name, Student.grade, RunRoster.room_id.label("expected"),
               StudentStatus.status, StudentStatus.room_id, StudentStatus.reported_at,
               StudentStatus.conflict_room_id, StudentStatus.conflict_status)
        .join(RunRoster, RunRoster.student_id == Student.id)
        .outerjoin(StudentStatus, (StudentStatus.run_id == RunRoster.run_id)
                   & (StudentStatus.student_id == RunRoster.student_id))
        .where(RunRoster.run_id == run.id).order_by(Student.family_name, Student.given_name, Student.id)).all()
    # Flat rows with room ids, the rooms listed once: 2,000 students must answer in well under 200 ms.
    # A room's report gives all its students one time: each is formatted once, not once a student.
    times: dict = {None: None}
    students = [{"id": id_, "name": f"{given} {family}", "grade": grade,
                 "status": ACCOUNTED if status == PRESENT else status or NOT_REPORTED,
                 "expected_room_id": expected, "room_id": room_id,
                 "reported_at": times[at] if at in times else times.setdefault(at, iso(at)),
                 "flagged": other_room is not None, "conflict_room_id": other_room, "conflict_status": other_status}
                for id_, given, family, grade, expected, status, room_id, at, other_room, other_status in rows]
    answer["counts"] = _counts_of(students)
    used = {s[k] for s in students for k in ("expected_room_id", "room_id", "conflict_room_id")} - {None}
    answer["rooms"] = [rooms[room_id] for room_id in sorted(used)]
    if partner_names and not admin:
        answer["missing"] = [s for s in students if s["status"] == MISSING]
        answer["names_included"] = True
        log_read(session, principal, run, "school_missing", len(answer["missing"]))
        return school_roster_for_partner(answer)
    answer.update(students=students, flagged=[s["id"] for s in students if s["flagged"]],
                  unaccounted=[s["id"] for s in students if s["status"] in (MISSING, NOT_REPORTED)])
    log_read(session, principal, run, "school_roster", len(students))
    return answer


# -- privacy ---------------------------------------------------------------------------------------
def access_log(session: Session, principal: Principal, *, school_id: int | None = None,
               since: datetime | None = None) -> list[dict]:
    """The §2-d access log of the schools the caller administers, newest first."""
    if not (principal.is_district_admin or principal.role == "school_admin"):
        raise Forbidden("Only admins can read the student data access log.")
    if school_id is not None and not principal.is_admin_of(school_id):
        raise NotFound(f"School {school_id} was not found.")
    schools = [school_id] if school_id is not None else principal.school_ids
    return access_log_entries(session, school_ids=schools, since=since)


def access_log_entries(session: Session, *, school_ids=None, since: datetime | None = None) -> list[dict]:
    """Reads of student-level lists, newest first: of `school_ids` (None: every school), from `since`."""
    query = select(StudentDataRead).order_by(StudentDataRead.at.desc(), StudentDataRead.id.desc())
    if school_ids is not None:
        query = query.where(StudentDataRead.school_id.in_(list(school_ids)))
    if since is not None:
        query = query.where(StudentDataRead.at >= since)
    return [{"at": iso(r.at), "account_id": r.account_id, "actor": {"kind": r.actor_kind, "id": r.actor_id,
                                                                    "name": r.actor_name, "role": r.role},
             "school_id": r.school_id, "run_id": r.run_id, "what": r.what, "students": r.students}
            for r in session.scalars(query.limit(100_000))]


ACCESS_LOG_COLUMNS = ("at", "school_id", "run_id", "what", "students", "account_id", "actor_kind", "actor_id",
                      "actor_name", "role")


def access_log_csv(entries: list[dict]) -> str:
    """The access log as CSV, for the district's records."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ACCESS_LOG_COLUMNS)
    for e in entries:
        actor = e["actor"]
        writer.writerow([e["at"], e["school_id"], e["run_id"] or "", e["what"], e["students"], e["account_id"],
                         actor["kind"], actor["id"], actor["name"], actor["role"]])
    return buffer.getvalue()
