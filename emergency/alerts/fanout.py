"""Turning a run event into alerts: who is told, through which channels, in what order.

Fan-out is a bulk insert in the caller's transaction, never sending: the run and its alerts
commit together, so a crash right after a start still leaves every alert in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from emergency.alerts.models import CANCELLED, QUEUED, SENT, SKIPPED, UNREACHABLE, Alert, OptOut
from emergency.alerts.queue import place
from emergency.directory.models import Partner, Person, partner_schools, person_schools
from emergency.directory.roles import ADMIN_ROLES, DISTRICT_ADMIN, NURSE, SCHOOL_ADMIN, SECURITY
from emergency.playbooks.model import ROLE_AUDIENCE_PREFIX, NotificationRule, Playbook
from emergency.playbooks.templates import REPLY_HINT, SUPERSEDED_TEMPLATE, message_variables, render, render_rule
from emergency.runs import timeline
from emergency.runs.models import Run
from emergency.runs.service import playbook_of
from emergency.timeutil import utcnow

# Partners hear first in a real run, then admins, then everyone else, whatever the rule order.
PARTNER_CLASS, ADMIN_CLASS, STAFF_CLASS = 0, 1, 2
CLASS_WEIGHT = 1000
CLOSING_OCCASIONS = ("all_clear", "cancel", "superseded")


@dataclass(frozen=True)
class Recipient:
    """The few directory fields fan-out needs; loaded as plain rows, not ORM objects, for speed."""

    kind: str  # person | partner
    id: int
    name: str
    role: str  # a person role, or "partner"
    mobile: str | None


@dataclass
class Delivery:
    """What one recipient gets for one occasion, merged over every rule that names them."""

    recipient: Recipient
    rule: NotificationRule
    channels: list[str] = field(default_factory=list)
    priority: int = 0
    require_ack: bool = False
    escalate_after: int | None = None


def _people(session: Session, school_id: int) -> list[Recipient]:
    members = select(person_schools.c.person_id).where(person_schools.c.school_id == school_id)
    rows = session.execute(select(Person.id, Person.name, Person.role, Person.mobile)
                           .where(Person.active.is_(True), Person.id.in_(members) | (Person.role == DISTRICT_ADMIN))
                           .order_by(Person.name, Person.id))
    return [Recipient("person", *row) for row in rows]


def _partners(session: Session, school_id: int) -> list[Recipient]:
    covering = select(partner_schools.c.partner_id).where(partner_schools.c.school_id == school_id)
    rows = session.execute(select(Partner.id, Partner.name, Partner.mobile)
                           .where(Partner.active.is_(True), Partner.id.in_(covering)).order_by(Partner.name))
    return [Recipient("partner", id_, name, "partner", mobile) for id_, name, mobile in rows]


def _audience_members(session: Session, run: Run, audience: str, cache: dict) -> list[Recipient]:
    if "people" not in cache:
        cache["people"] = _people(session, run.school_id)
    people: list[Recipient] = cache["people"]
    if audience == "partners":
        if "partners" not in cache:
            cache["partners"] = _partners(session, run.school_id)
        return cache["partners"]
    if audience == "all_staff":
        return [p for p in people if p.role != DISTRICT_ADMIN]
    role = {"school_admins": SCHOOL_ADMIN, "district_admins": DISTRICT_ADMIN, "nurses": NURSE,
            "security": SECURITY}.get(audience)
    if role is None and audience.startswith(ROLE_AUDIENCE_PREFIX):
        role = audience[len(ROLE_AUDIENCE_PREFIX):]
    return [p for p in people if p.role == role]


def plan(session: Session, run: Run, playbook: Playbook) -> list[Delivery]:
    """Expand the playbook's rules for this run's mode into one Delivery per recipient."""
    deliveries: dict[tuple[str, int], Delivery] = {}
    cache: dict = {}
    for rule in playbook.rules_for(run.mode):
        for audience in rule.audience:
            for recipient in _audience_members(session, run, audience, cache):
                key = (recipient.kind, recipient.id)
                delivery = deliveries.get(key)
                if delivery is None:
                    delivery = deliveries[key] = Delivery(recipient, rule, priority=rule.priority)
                for channel in rule.channels:
                    if channel not in delivery.channels:
                        delivery.channels.append(channel)
                delivery.priority = min(delivery.priority, rule.priority)
                if rule.require_ack:
                    delivery.require_ack = True
                    if rule.escalate_after_seconds:
                        delivery.escalate_after = min(filter(None, (delivery.escalate_after,
                                                                    rule.escalate_after_seconds)))
    return sorted(deliveries.values(), key=lambda d: (_rank(d, run), d.recipient.name))


def _class(delivery: Delivery) -> int:
    if delivery.recipient.kind == "partner":
        return PARTNER_CLASS
    return ADMIN_CLASS if delivery.recipient.role in ADMIN_ROLES else STAFF_CLASS


def _rank(delivery: Delivery, run: Run) -> int:
    return _class(delivery) * CLASS_WEIGHT + delivery.priority


def fan_out(session: Session, run: Run, occasion: str, event_seq: int, *, extra: dict | None = None) -> int:
    """Write the alerts for `occasion` of `run` to the outbox; returns how many were queued."""
    playbook = playbook_of(run)
    now = utcnow()
    opted_out = set(session.scalars(select(OptOut.number)))
    variables = message_variables(run, **(extra or {}))
    rows: list[dict] = []
    unreachable: list[dict] = []
    skipped: list[dict] = []
    rendered: dict[tuple, str] = {}
    # The run's n-th recipient goes in the n-th round from now, all channels alike.
    queue = place(session, run)

    def words(rule: NotificationRule, hint: str) -> str:
        # Every recipient of a rule gets the same words: render once per rule, not per person.
        key = (id(rule), hint)
        if key not in rendered:
            if occasion == "superseded":
                rendered[key] = render(SUPERSEDED_TEMPLATE, variables, run.mode)
            else:
                rendered[key] = render_rule(rule, occasion, run.mode, {**variables, "reply_hint": hint})
        return rendered[key]

    for turn, delivery in enumerate(plan(session, run, playbook), start=queue["turn"]):
        recipient = delivery.recipient
        require_ack = delivery.require_ack and occasion == "start"
        text = words(delivery.rule, REPLY_HINT if require_ack else "")
        spoken = words(delivery.rule, "")
        channels = list(delivery.channels)
        number = recipient.mobile
        if "sms" in channels and number in opted_out and "voice" not in channels:
            channels.append("voice")  # opted out of SMS: a call is the fallback
        base = {
            "run_id": run.id, "event_seq": event_seq, "occasion": occasion,
            "person_id": recipient.id if recipient.kind == "person" else None,
            "partner_id": recipient.id if recipient.kind == "partner" else None,
            "recipient_name": recipient.name,
            "recipient_role": recipient.role,
            "to_number": number, "priority": _rank(delivery, run), "lane": queue["lane"], "turn": turn,
            "requires_ack": require_ack,
            "escalate_after_seconds": delivery.escalate_after if require_ack else None,
            "queued_at": now, "next_attempt_at": now, "attempts": 0,
            "escalate_at": None, "escalated_at": None, "sent_at": None, "error_message": None,
        }
        primary_set = False
        for channel in channels:
            row = dict(base, channel=channel, body=spoken if channel == "voice" else text, status=QUEUED)
            if channel == "push":
                row.update(status=SENT, sent_at=now)  # delivered by the live event itself
            elif not number:
                row.update(status=UNREACHABLE, error_message="no mobile number in the directory")
            elif channel == "sms" and number in opted_out:
                row.update(status=SKIPPED, error_message="opted out of SMS (replied STOP); calling instead")
                skipped.append({"name": recipient.name, "role": base["recipient_role"]})
            if (require_ack and delivery.escalate_after and not primary_set and row["status"] != UNREACHABLE
                    and row["status"] != SKIPPED and channel != "voice"):
                # Silence after this long escalates to a voice call (see alerts.escalation).
                row["escalate_at"] = now + timedelta(seconds=delivery.escalate_after)
                primary_set = True
            rows.append(row)
        if require_ack and delivery.escalate_after and not primary_set:
            # No text or push to wait on (opted out of SMS, say): the call itself carries the timer,
            # so an unanswered call still tells the admins who is unreachable.
            call = next((r for r in rows[-len(channels):] if r["channel"] == "voice" and r["status"] == QUEUED), None)
            if call is not None:
                call["escalate_at"] = now + timedelta(seconds=delivery.escalate_after)
        if not number and any(c in ("sms", "voice") for c in channels):
            unreachable.append({"name": recipient.name, "role": base["recipient_role"]})
    if rows:
        # A Core executemany: every row has the same keys, so the driver batches them.
        session.execute(insert(Alert.__table__), rows)
    if unreachable and occasion == "start":
        timeline.record(session, run, "alert.unreachable",
                        {"count": len(unreachable), "recipients": unreachable,
                         "reason": "no mobile number in the directory"})
    if skipped and occasion == "start":
        # Admins see before anyone wonders why a phone rang instead of buzzing.
        timeline.record(session, run, "alert.opted_out",
                        {"count": len(skipped), "recipients": skipped,
                         "reason": "replied STOP to our texts; they get a call instead"})
    return sum(1 for r in rows if r["status"] == QUEUED)


def cancel_pending(session: Session, run: Run) -> None:
    """The run ended: unsent alerts and pending escalations are dropped."""
    session.execute(update(Alert).where(Alert.run_id == run.id, Alert.status == QUEUED,
                                        Alert.occasion.not_in(CLOSING_OCCASIONS))
                    .values(status=CANCELLED, finished_at=utcnow(),
                            error_message="not sent: the run ended first"))
    session.execute(update(Alert).where(Alert.run_id == run.id, Alert.escalate_at.is_not(None),
                                        Alert.escalated_at.is_(None))
                    .values(escalate_at=None))


# What runs.announcements calls (create_app wires this module in): runs sit below alerts.
announce = fan_out
withdraw = cancel_pending
