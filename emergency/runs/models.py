"""A run is one drill or real emergency at one school; its timeline is the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, relationship

from emergency.db import Base, JSONType, UTCDateTime
from emergency.directory.models import School
from emergency.timeutil import utcnow

ACTIVE = "active"
ENDED = "ended"  # all-clear
CANCELLED = "cancelled"  # false alarm
SUPERSEDED = "superseded"  # a drill ended because a real run started
STATES = (ACTIVE, ENDED, CANCELLED, SUPERSEDED)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The database itself guarantees one active run per school, even under a race.
        Index("uq_runs_one_active_per_school", "school_id", unique=True,
              sqlite_where=text("state = 'active'"), postgresql_where=text("state = 'active'")),
        Index("ix_runs_school_started", "school_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"))
    playbook_key: Mapped[str] = mapped_column(String(64))
    playbook_version: Mapped[str] = mapped_column(String(64))
    playbook: Mapped[dict] = mapped_column(JSONType)  # the exact definition the run follows
    mode: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(32))
    directive: Mapped[str] = mapped_column(String(300))
    location: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=ACTIVE, index=True)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    end_message: Mapped[str | None] = mapped_column(Text)
    started_by: Mapped[dict] = mapped_column(JSONType)
    started_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    ended_by: Mapped[dict | None] = mapped_column(JSONType)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    facts: Mapped[dict] = mapped_column(JSONType, default=dict)  # compliance facts (secondary exit, ...)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))

    school: Mapped[School] = relationship()

    @property
    def is_active(self) -> bool:
        return self.state == ACTIVE


class RunEvent(Base):
    """One entry of a run's timeline. Never updated, never deleted."""

    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(48))
    actor: Mapped[dict] = mapped_column(JSONType)
    payload: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """A client's Idempotency-Key for starting a run: a retry returns the same run."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TimelineIsAppendOnly(Exception):
    """Raised on any attempt to change or remove a timeline event."""


@event.listens_for(RunEvent, "before_update")
def _refuse_update(_mapper, _connection, target):
    raise TimelineIsAppendOnly(f"timeline event {target.run_id}#{target.seq} cannot be changed")


@event.listens_for(RunEvent, "before_delete")
def _refuse_delete(_mapper, _connection, target):
    raise TimelineIsAppendOnly(f"timeline event {target.run_id}#{target.seq} cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk(state: ORMExecuteState):
    if (state.is_update or state.is_delete) and any(
            getattr(m, "class_", None) is RunEvent for m in state.all_mappers):
        raise TimelineIsAppendOnly("timeline events cannot be changed or deleted")
