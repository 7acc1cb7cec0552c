"""Students, classes and enrollments from the district's OneRoster export, bell schedules, and per run:
who was expected where, each student's latest status, and the log of who read student lists.

Kept apart from accountability's tables on purpose: check-ins hold counts (kept for ever, the drill
record); these hold names and per-student statuses (§2-d data, purged after the retention period).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from emergency.db import Base, UTCDateTime
from emergency.directory.models import Room
from emergency.timeutil import utcnow

# A student's status in a run, as a teacher reports it.
PRESENT, ABSENT, MISSING, INJURED = "present", "absent", "missing", "injured"
STUDENT_STATUSES = (PRESENT, ABSENT, MISSING, INJURED)
TEACHER, STUDENT = "teacher", "student"


class Student(Base):
    """A student of one of our schools, from users.csv (role student)."""

    __tablename__ = "students"

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    identifier: Mapped[str] = mapped_column(String(64), default="")  # the SIS student number
    grade: Mapped[str] = mapped_column(String(16), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class RosterClass(Base):
    """A class section from classes.csv: where it meets (a room) and in which periods; homerooms all day."""

    __tablename__ = "roster_classes"

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    homeroom: Mapped[bool] = mapped_column(Boolean, default=False)  # classType homeroom
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    periods: Mapped[list] = mapped_column(JSON, default=list)  # period names, e.g. ["1", "2"]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    room: Mapped[Room | None] = relationship()


class Enrollment(Base):
    """A student or a teacher in a class (enrollments.csv)."""

    __tablename__ = "enrollments"
    __table_args__ = (Index("ix_enrollments_class_role", "class_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("roster_classes.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # student, teacher
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RosterTeacher(Base):
    """A teacher's sourcedId in the export and the person it matched by email (a delta may omit users.csv)."""

    __tablename__ = "roster_teachers"

    sourced_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)


class BellPeriod(Base):
    """One period of a school's bell schedule for one day type (bell_schedules.csv)."""

    __tablename__ = "bell_periods"
    __table_args__ = (UniqueConstraint("school_id", "day_type", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"))
    day_type: Mapped[str] = mapped_column(String(32))
    days: Mapped[str] = mapped_column(String(32))  # weekdays the day type applies to: "mon;tue;wed;thu"
    period: Mapped[str] = mapped_column(String(32))
    starts: Mapped[str] = mapped_column(String(5))  # "08:05", school local time
    ends: Mapped[str] = mapped_column(String(5))


class RunRoster(Base):
    """Who was expected where when a run started (worked out once per run from the schedule)."""

    __tablename__ = "run_rosters"
    __table_args__ = (Index("ix_run_rosters_run_room", "run_id", "room_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), primary_key=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))  # None: unknown
    class_id: Mapped[int | None] = mapped_column(ForeignKey("roster_classes.id", ondelete="SET NULL"))


class RunRosterBuilt(Base):
    """Marks a run whose expected students were worked out, and the period that was current."""

    __tablename__ = "run_roster_builds"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str | None] = mapped_column(String(32))  # None: outside class time (homerooms)
    day_type: Mapped[str | None] = mapped_column(String(32))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StudentStatus(Base):
    """A student's latest status in a run; a report from another room than the last one is flagged."""

    __tablename__ = "student_statuses"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))  # the room that reported the student
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Reported by two rooms: the other room and what it said (the latest report wins; a person checks).
    conflict_room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    conflict_status: Mapped[str | None] = mapped_column(String(16))


class StudentDataRead(Base):
    """§2-d access log: who read a student-level list, when, of which run. Never the names themselves."""

    __tablename__ = "student_data_reads"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    account_id: Mapped[int] = mapped_column(Integer)
    actor_kind: Mapped[str] = mapped_column(String(16))  # person, partner
    actor_id: Mapped[int] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    what: Mapped[str] = mapped_column(String(32))  # school_roster, room_roster, student_search
    students: Mapped[int] = mapped_column(Integer, default=0)  # how many students the answer named

