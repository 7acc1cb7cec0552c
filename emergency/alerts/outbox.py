"""Where alert rows are made: every producer of alerts calls `queue()` (or `call_instead()`).

The producers say who gets which words on which channels: fan-out (a run's start, updates and
end), escalation (the call after silence, the admins told who stayed silent), accountability
(calls for help, reminders) and the dispatcher (a number that replied STOP). This module writes
the rows in the caller's transaction, each with its place in the district-wide queue
(`alerts.queue`), and holds the rules every alert follows:

- a push goes to each of the person's registered devices (Web Push); with none, the push is the
  live event itself, SENT;
- no mobile number: the text or call is UNREACHABLE;
- opted out of SMS (replied STOP): the text is SKIPPED and a call carries the same words instead
  (unless the producer says a call is not worth it: a reminder);
- an alert that needs an acknowledgement within N seconds starts its timer on the first channel that
  can be answered (push or SMS), or on the call when that is all there is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, sessionmaker

from emergency.alerts.models import QUEUED, SENT, SKIPPED, UNREACHABLE, Alert, OptOut
from emergency.alerts.queue import place
from emergency.db import insert_rows, is_postgres
from emergency.directory.models import Partner, Person
from emergency.runs.models import Run
from emergency.timeutil import utcnow

NO_NUMBER = "no mobile number in the directory"
CALLING_INSTEAD = "opted out of SMS (replied STOP); calling instead"
NOT_CALLED = "opted out of SMS (replied STOP)"


@dataclass
class Outgoing:
    """One recipient's alert for one occasion: the channels to try, the words, how urgent."""

    name: str
    role: str  # a person role, or "partner"
    number: str | None
    channels: list[str]
    text: str  # push and SMS
    spoken: str | None = None  # the call; the text when None
    person_id: int | None = None
    partner_id: int | None = None
    priority: int = 0  # lower is sooner, within the run
    round: int = 0  # the n-th round from the run's current one (fan-out spreads its recipients)
    requires_ack: bool = False
    escalate_after: int | None = None  # seconds of silence before escalation (with requires_ack)
    call_if_opted_out: bool = True
    # False: when the call replaces a text for an opted-out number, no skipped text row is written
    # (the admins' unreachable notice is a call, not a text that was not sent).
    record_skipped_text: bool = True
    link: str | None = None  # appended to the text message (staff only: partners' texts stay link-free)
    devices: list[int] = field(default_factory=list)  # the person's push subscriptions: one push row each
    push_payload: dict | None = None  # what the push carries (see push.payload); with devices

    @classmethod
    def to(cls, recipient: Person | Partner, channels: list[str], text: str, **kwargs) -> Outgoing:
        """An alert to a Person or Partner of the directory."""
        partner = isinstance(recipient, Partner)
        return cls(name=recipient.name, role="partner" if partner else recipient.role, number=recipient.mobile,
                   channels=channels, text=text, person_id=None if partner else recipient.id,
                   partner_id=recipient.id if partner else None, **kwargs)


def opted_out(session: Session, numbers: list[str] | None = None) -> set[str]:
    """The numbers that replied STOP (among `numbers`, or all)."""
    query = select(OptOut.number)
    if numbers is not None:
        if not numbers:
            return set()
        query = query.where(OptOut.number.in_(numbers))
    return set(session.scalars(query))


def queue(session: Session, run: Run, event_seq: int, occasion: str, outgoing: list[Outgoing], *,
          stopped: set[str] | None = None) -> list[dict]:
    """Write the rows of `outgoing` to the outbox (one per recipient and channel); returns the rows.

    `stopped`: the opted-out numbers, when the caller already read them.
    """
    if not outgoing:
        return []
    now = utcnow()
    if stopped is None:
        stopped = opted_out(session, [o.number for o in outgoing if o.number])
    spot = place(session, run)
    rows: list[dict] = []
    for alert in outgoing:
        rows.extend(_rows(run, event_seq, occasion, alert, spot, alert.number in stopped, now))
    insert_rows(session, Alert.__table__, rows)  # COPY on PostgreSQL: every row has the same keys
    if not session.info.get(QUEUED_IN_SESSION):
        session.info[QUEUED_IN_SESSION] = True  # wake_on_commit: this process's dispatcher claims at once
        if is_postgres(session):  # and every other process's (alerts.wakeup), when this commits
            session.execute(NOTIFY_DUE)
    return rows


QUEUED_IN_SESSION = "alerts_queued"
# PostgreSQL delivers a NOTIFY when (and only if) its transaction commits, once per transaction.
DUE_CHANNEL = "emergency_alerts_due"
NOTIFY_DUE = text(f"NOTIFY {DUE_CHANNEL}")


def wake_on_commit(sessions: sessionmaker, wake: Callable[[], None]) -> None:
    """Call `wake` whenever a session of `sessions` commits alerts that `queue` wrote."""

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop(QUEUED_IN_SESSION, False):
            wake()

    @event.listens_for(sessions, "after_rollback")
    def _discard(session: Session) -> None:
        session.info.pop(QUEUED_IN_SESSION, None)


def _rows(run: Run, event_seq: int, occasion: str, alert: Outgoing, spot: dict, stopped: bool,
          now: datetime) -> list[dict]:
    channels = list(alert.channels)
    if "sms" in channels and stopped and alert.call_if_opted_out and "voice" not in channels:
        channels.append("voice")  # opted out of SMS: a call is the fallback
    base = {
        "run_id": run.id, "event_seq": event_seq, "occasion": occasion, "person_id": alert.person_id,
        "partner_id": alert.partner_id, "recipient_name": alert.name, "recipient_role": alert.role,
        "to_number": alert.number, "priority": alert.priority, "lane": spot["lane"],
        "turn": spot["turn"] + alert.round, "requires_ack": alert.requires_ack,
        "escalate_after_seconds": alert.escalate_after if alert.requires_ack else None,
        "queued_at": now, "next_attempt_at": now, "attempts": 0,
        "escalate_at": None, "escalated_at": None, "sent_at": None, "error_message": None,
        "subscription_id": None, "payload": None,
    }
    # A push goes to each of the person's devices; without one, the live event is all there is.
    targets = [(channel, device) for channel in channels
               for device in ((alert.devices or [None]) if channel == "push" else [None])]
    rows = []
    for channel, device in targets:
        row = dict(base, channel=channel, body=alert.spoken or alert.text if channel == "voice" else alert.text,
                   status=QUEUED)
        if channel == "sms" and alert.link:
            row["body"] = f"{alert.text} {alert.link}"
        if channel == "push" and device is not None:
            row.update(subscription_id=device, payload=alert.push_payload)
        elif channel == "push":
            row.update(status=SENT, sent_at=now)  # delivered by the live event itself
        elif not alert.number:
            row.update(status=UNREACHABLE, error_message=NO_NUMBER)
        elif channel == "sms" and stopped:
            row.update(status=SKIPPED, error_message=CALLING_INSTEAD if "voice" in channels else NOT_CALLED)
        rows.append(row)
    if stopped and not alert.record_skipped_text and "voice" in channels:
        rows = [r for r in rows if not (r["channel"] == "sms" and r["status"] == SKIPPED)]
    if alert.requires_ack and alert.escalate_after:
        # Silence after this long escalates (see alerts.escalation): timed on what can be answered
        # first, or on the call itself when there is nothing else, so an unanswered call still tells
        # the admins who is unreachable.
        waiting = next((r for r in rows if r["channel"] != "voice" and r["status"] not in (UNREACHABLE, SKIPPED)),
                       None) or next((r for r in rows if r["channel"] == "voice" and r["status"] == QUEUED), None)
        if waiting is not None:
            waiting["escalate_at"] = now + timedelta(seconds=alert.escalate_after)
    return rows


def call_instead(session: Session, run: Run, alert: Alert) -> None:
    """A text bounced because the number replied STOP: the same words by phone, unless a call is queued already."""
    has_call = session.scalar(select(Alert.id).where(Alert.run_id == alert.run_id, Alert.channel == "voice",
                                                     Alert.event_seq == alert.event_seq,
                                                     Alert.to_number == alert.to_number))
    if has_call is None:
        queue(session, run, alert.event_seq, alert.occasion, [Outgoing(
            name=alert.recipient_name, role=alert.recipient_role, number=alert.to_number, channels=["voice"],
            text=alert.body, person_id=alert.person_id, partner_id=alert.partner_id, priority=alert.priority,
            requires_ack=alert.requires_ack)], stopped=set())
