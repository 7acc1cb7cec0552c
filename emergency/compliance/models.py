"""Drills held without the system (on paper), entered by hand afterwards so they count too."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from emergency.db import Base, JSONType, UTCDateTime
from emergency.directory.models import School
from emergency.timeutil import utcnow


class ManualDrill(Base):
    """One drill record typed in after the fact; who entered it and when is kept for inspectors."""

    __tablename__ = "manual_drills"
    __table_args__ = (Index("ix_manual_drills_school_held", "school_id", "held_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))  # one of rules.CATEGORIES
    held_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    secondary_exit: Mapped[bool] = mapped_column(Boolean, default=False)
    summer: Mapped[bool] = mapped_column(Boolean, default=False)
    parents_notified_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    entered_by: Mapped[dict] = mapped_column(JSONType)  # Principal.actor() of whoever typed it in
    entered_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    school: Mapped[School] = relationship()
