"""The alert outbox: one row per recipient per channel, written with the event that caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from emergency.db import Base, JSONType, UTCDateTime
from emergency.timeutil import utcnow

# Our status of an alert. Provider statuses are kept as they come in `provider_status`.
QUEUED = "queued"  # waiting to be sent (also: waiting for a retry)
SENDING = "sending"  # claimed by a dispatcher; deadline_at says when the claim lapses
SENT = "sent"  # accepted by the provider
DELIVERED = "delivered"  # SMS delivered to the handset
ANSWERED = "answered"  # voice: the call was picked up (maybe by voicemail)
COMPLETED = "completed"  # voice: the call ended after being answered
UNDELIVERED = "undelivered"
NO_ANSWER = "no_answer"
BUSY = "busy"
FAILED = "failed"
CANCELLED = "cancelled"  # the run ended before it was sent
SKIPPED = "skipped"  # not attempted: the number opted out of SMS
UNREACHABLE = "unreachable"  # the person has no usable mobile number

FINAL = frozenset({DELIVERED, COMPLETED, UNDELIVERED, NO_ANSWER, BUSY, FAILED, CANCELLED, SKIPPED, UNREACHABLE})
NOT_REACHED = frozenset({UNDELIVERED, NO_ANSWER, BUSY, FAILED, SKIPPED, UNREACHABLE})
# How far along each status is: a callback never moves an alert to a lower rank.
RANK = {QUEUED: 0, SENDING: 1, SENT: 2, ANSWERED: 3, **{s: 9 for s in FINAL}}

# The claim order across every run: lane first (real emergencies before drills, whatever the
# school), then turn (round robin by run: a run's n-th alert is in the n-th round), then id.
REAL_LANE, DRILL_LANE = 0, 1
# What the dispatcher claims and sends, each channel claimed on its own.
DISPATCHED_CHANNELS = ("sms", "voice", "push")
_CLAIMABLE = "status IN ('queued', 'sending')"


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # Only queued and in-flight alerts are ever claimed: the index stays as small as the backlog.
        Index("ix_alerts_due", "channel", "lane", "turn", "id",
              postgresql_where=text(_CLAIMABLE), sqlite_where=text(_CLAIMABLE)),
        Index("ix_alerts_run_recipient", "run_id", "person_id", "partner_id"),
        Index("ix_alerts_escalate", "escalate_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    event_seq: Mapped[int] = mapped_column(Integer)  # the timeline entry that caused it
    occasion: Mapped[str] = mapped_column(String(24))  # start, update, all_clear, cancel, escalation, ...
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    recipient_name: Mapped[str] = mapped_column(String(200))
    recipient_role: Mapped[str] = mapped_column(String(32))
    to_number: Mapped[str | None] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # push, sms, voice
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)  # lower is sooner, within the run
    # Defaults fail towards urgency: an alert queued without its place is claimed early, not late.
    lane: Mapped[int] = mapped_column(Integer, default=REAL_LANE, server_default=text("0"))
    turn: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    provider_status: Mapped[str | None] = mapped_column(String(24))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[int | None] = mapped_column(Integer)  # the DispatcherHeartbeat holding the claim
    requires_ack: Mapped[bool] = mapped_column(Boolean, default=False)
    escalate_after_seconds: Mapped[int | None] = mapped_column(Integer)
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ack_channel: Mapped[str | None] = mapped_column(String(8))
    # Web Push: the one device this alert goes to, and the notification it carries.
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("push_subscriptions.id", ondelete="SET NULL"))
    payload: Mapped[dict | None] = mapped_column(JSONType)

    @property
    def recipient_kind(self) -> str:
        return "partner" if self.partner_id else "person"


class Acknowledgement(Base):
    """A recipient confirmed a run's alert: once per recipient per run."""

    __tablename__ = "acknowledgements"
    __table_args__ = (
        # A unique constraint over (run_id, person_id, partner_id) would not hold: one of the two ids
        # is always NULL, and NULLs never compare equal. One partial index per recipient kind does.
        Index("uq_acknowledgements_person", "run_id", "person_id", unique=True,
              sqlite_where=text("person_id IS NOT NULL"), postgresql_where=text("person_id IS NOT NULL")),
        Index("uq_acknowledgements_partner", "run_id", "partner_id", unique=True,
              sqlite_where=text("partner_id IS NOT NULL"), postgresql_where=text("partner_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(8))  # app, sms, voice
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OptOut(Base):
    """A number that replied STOP to our sender: no SMS is attempted until it replies START."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    keyword: Mapped[str] = mapped_column(String(16))
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InboundMessage(Base):
    """Every SMS received, for the audit trail and the per-number reply rate limit."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(20), index=True)
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    replied: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DispatcherHeartbeat(Base):
    """A running dispatcher: its claims are taken over as soon as it stops beating."""

    __tablename__ = "dispatchers"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SendBudget(Base):
    """The next free send slot of one sender, shared by every dispatcher (PostgreSQL without Redis)."""

    __tablename__ = "send_budgets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_at: Mapped[float] = mapped_column(Float)  # seconds since the epoch, on the database's clock
