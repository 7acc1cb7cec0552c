"""Classroom check-ins, the latest status of each room and of each staff member, reminder state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from emergency.db import Base, UTCDateTime
from emergency.directory.models import Person, Room
from emergency.timeutil import utcnow

ALL_ACCOUNTED = "all_accounted"
STUDENTS_MISSING = "students_missing"
NEED_HELP = "need_help"
CHECKIN_STATUSES = (ALL_ACCOUNTED, STUDENTS_MISSING, NEED_HELP)

SAFE = "safe"
STAFF_STATUSES = (SAFE, NEED_HELP)

COUNT_FIELDS = ("present", "absent", "missing", "injured", "extra")
MAX_COUNT = 5000  # the largest count a report may give

# SQL NULL (not JSON 'null') on every backend, so "names purged" is a plain IS NULL.
Names = JSON(none_as_null=True)


class RoomCounts:
    """The counts of a room's report (COUNT_FIELDS): on each report, each room's latest, and a run's tally."""

    present: Mapped[int] = mapped_column(Integer, default=0)
    absent: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    injured: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[int] = mapped_column(Integer, default=0)


class Checkin(RoomCounts, Base):
    """One room's report as it was sent. Kept forever (names aside): the history of the roll-up."""

    __tablename__ = "checkins"
    __table_args__ = (
        # A retried offline check-in carries the same key and is recorded once.
        UniqueConstraint("run_id", "idempotency_key", name="uq_checkins_run_key"),
        Index("ix_checkins_run_room", "run_id", "room_id", "id"),
        # The few (normally none) check-ins whose tally and timeline entry are still to be applied.
        Index("ix_checkins_untallied", "id", postgresql_where=text("tallied_at IS NULL"),
              sqlite_where=text("tallied_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reporter_name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))  # app, sms
    status: Mapped[str] = mapped_column(String(24))
    location: Mapped[str | None] = mapped_column(String(200))
    missing_students: Mapped[list | None] = mapped_column(Names)
    injured_students: Mapped[list | None] = mapped_column(Names)
    note: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    names_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the run's tally and timeline took this check-in in: with the report itself. NULL only for a
    # report an earlier version stored and had still to tally (accountability.checkins.apply_untallied).
    tallied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    room: Mapped[Room] = relationship()


class RoomStatus(RoomCounts, Base):
    """The latest check-in of each room of a run, with its counts copied so the roll-up never reads history."""

    __tablename__ = "room_statuses"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), primary_key=True)
    checkin_id: Mapped[int] = mapped_column(ForeignKey("checkins.id"))
    status: Mapped[str] = mapped_column(String(24))
    reports: Mapped[int] = mapped_column(Integer, default=1)
    first_reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The report the latest one replaced, as the check-in found it under this row's lock: the tally
    # moves by the difference (accountability.checkins). NULL after a room's first report.
    previous_checkin_id: Mapped[int | None] = mapped_column(Integer)
    previous_status: Mapped[str | None] = mapped_column(String(24))
    previous_present: Mapped[int | None] = mapped_column(Integer)
    previous_absent: Mapped[int | None] = mapped_column(Integer)
    previous_missing: Mapped[int | None] = mapped_column(Integer)
    previous_injured: Mapped[int | None] = mapped_column(Integer)
    previous_extra: Mapped[int | None] = mapped_column(Integer)

    checkin: Mapped[Checkin] = relationship()
    room: Mapped[Room] = relationship()


class StaffStatus(Base):
    """The latest "I am safe" / "I need help" of each staff member in a run (history: the timeline)."""

    __tablename__ = "staff_statuses"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    location: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship()
    room: Mapped[Room | None] = relationship()


class AccountabilitySchedule(Base):
    """When a run's reminder and deadline are due and whether they went out; survives restarts."""

    __tablename__ = "accountability_schedules"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    reminder_due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deadline_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RunTally(RoomCounts, Base):
    """A run's accountability totals, moved by each check-in's difference so no read adds up the rooms."""

    __tablename__ = "accountability_tallies"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    reported: Mapped[int] = mapped_column(Integer, default=0)  # expected rooms (when they first reported)
    reported_rooms: Mapped[int] = mapped_column(Integer, default=0)  # every room that reported
    need_help: Mapped[int] = mapped_column(Integer, default=0)  # rooms whose latest status is need_help
    # The latest first report of an expected room: the moment the run became fully accounted for.
    last_expected_first_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
