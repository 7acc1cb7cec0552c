"""The district: schools, rooms, people (staff) and partners (police, fire, EMS)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from emergency.db import Base, UTCDateTime
from emergency.timeutil import utcnow

person_schools = Table(
    "person_schools",
    Base.metadata,
    Column("person_id", ForeignKey("people.id", ondelete="CASCADE"), primary_key=True),
    Column("school_id", ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True, index=True),
)

partner_schools = Table(
    "partner_schools",
    Base.metadata,
    Column("partner_id", ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("school_id", ForeignKey("schools.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class School(Base):
    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    dismissal_time: Mapped[str | None] = mapped_column(String(5))  # "15:10", local time
    # The school's org sourcedId in the district's OneRoster export (see docs/roster.md).
    sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    rooms: Mapped[list[Room]] = relationship(back_populates="school", order_by="Room.number")


class Room(Base):
    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("school_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    floor: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(32), default="classroom")
    capacity: Mapped[int | None] = mapped_column(Integer)

    school: Mapped[School] = relationship(back_populates="rooms")

    @property
    def label(self) -> str:
        return room_label(self.number, self.name)


def room_label(number: str, name: str | None) -> str:
    """How a room is named to people: "204 Science", or "204" when it has no other name."""
    return f"{number} {name}".strip() if name and name != number else number


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32), index=True)
    mobile: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    home_room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    schools: Mapped[list[School]] = relationship(secondary=person_schools, order_by="School.code")
    home_room: Mapped[Room | None] = relationship()


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))  # police, fire, ems, ...
    mobile: Mapped[str | None] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    schools: Mapped[list[School]] = relationship(secondary=partner_schools, order_by="School.code")
