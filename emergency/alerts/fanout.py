"""Turning a run event into alerts: who is told, through which channels, in what order.

Fan-out is a bulk insert in the caller's transaction, never sending: the run and its alerts
commit together, so a crash right after a start still leaves every alert in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from emergency.alerts import outbox
from emergency.alerts.models import CANCELLED, QUEUED, SKIPPED, UNREACHABLE, Alert
from emergency.directory.models import Partner, Person, partner_schools, person_schools
from emergency.directory.roles import ADMIN_ROLES, DISTRICT_ADMIN, NURSE, SCHOOL_ADMIN, SECURITY
from emergency.playbooks.model import ROLE_AUDIENCE_PREFIX, NotificationRule, Playbook
from emergency.playbooks.templates import REPLY_HINT, SUPERSEDED_TEMPLATE, message_variables, render, render_rule
from emergency.push.payload import notification
from emergency.push.service import devices_by_person
from emergency.realtime.push import ADMINS
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


def run_link(session: Session, run: Run) -> str | None:
    """The short link staff texts end with: it opens the run in the console (after a login, never instead)."""
    app = session.info.get("app")
    if app is None or not app.config.get("STAFF_SMS_LINKS"):
        return None
    return f"{app.config['PUBLIC_BASE_URL']}/r/{run.id}"


def _with_link(text: str, link: str | None) -> str:
    return f"{text} {link}" if link else text


def without_link(text: str, run_id: int) -> str:
    """A staff text without the run link `_with_link` ended it with, whatever PUBLIC_BASE_URL was then."""
    head, _, last = text.rpartition(" ")
    if head and last.startswith(("http://", "https://")) and last.endswith(f"/r/{run_id}"):
        return head
    return text


def fan_out(session: Session, run: Run, occasion: str, event_seq: int, *, extra: dict | None = None) -> int:
    """Write the alerts for `occasion` of `run` to the outbox; returns how many were queued."""
    playbook = playbook_of(run)
    variables = message_variables(run, **(extra or {}))
    rendered: dict[tuple, str] = {}
    notifications: dict[tuple, dict] = {}
    link = run_link(session, run)
    deliveries = plan(session, run, playbook)
    devices = devices_by_person(session, [d.recipient.id for d in deliveries
                                          if d.recipient.kind == "person" and "push" in d.channels])

    def push_payload(rule: NotificationRule, text: str, require_ack: bool) -> dict:
        key = (id(rule), require_ack)
        if key not in notifications:
            notifications[key] = notification(
                run_id=run.id, school_id=run.school_id, school=variables["school"], action=variables["action"],
                directive=variables["directive"] or "", mode=run.mode, occasion=occasion, text=text,
                requires_ack=require_ack)
        return notifications[key]

    def words(rule: NotificationRule, hint: str) -> str:
        # Every recipient of a rule gets the same words: render once per rule, not per person.
        key = (id(rule), hint)
        if key not in rendered:
            if occasion == "superseded":
                rendered[key] = render(SUPERSEDED_TEMPLATE, variables, run.mode)
            else:
                rendered[key] = render_rule(rule, occasion, run.mode, {**variables, "reply_hint": hint})
        return rendered[key]

    outgoing = []
    # The run's n-th recipient goes in the n-th round from now, all channels alike.
    for round_, delivery in enumerate(deliveries):
        recipient = delivery.recipient
        require_ack = delivery.require_ack and occasion == "start"
        text = words(delivery.rule, REPLY_HINT if require_ack else "")
        person = recipient.kind == "person"
        outgoing.append(outbox.Outgoing(
            name=recipient.name, role=recipient.role, number=recipient.mobile, channels=list(delivery.channels),
            text=text, spoken=words(delivery.rule, ""),
            person_id=recipient.id if recipient.kind == "person" else None,
            partner_id=recipient.id if recipient.kind == "partner" else None,
            priority=_rank(delivery, run), round=round_, requires_ack=require_ack,
            escalate_after=delivery.escalate_after,
            # never in partners' texts: they stay link-free by rule
            link=link if person else None,
            devices=devices.get(recipient.id, []) if person else [],
            push_payload=push_payload(delivery.rule, text, require_ack) if person and "push" in delivery.channels
            else None))
    rows = outbox.queue(session, run, event_seq, occasion, outgoing, stopped=outbox.opted_out(session))
    if occasion == "start":
        # One entry per recipient, though a text and a call may both be unreachable.
        unreachable = list({(r["person_id"], r["partner_id"]): _named(r) for r in rows
                            if r["status"] == UNREACHABLE}.values())
        skipped = [_named(r) for r in rows if r["status"] == SKIPPED]
        # Pushed to the school's admins, who act on them, not to every phone of the school; the
        # timeline keeps them for everyone who reads it.
        if unreachable:
            timeline.record(session, run, "alert.unreachable",
                            {"count": len(unreachable), "recipients": unreachable, "reason": outbox.NO_NUMBER},
                            audience=ADMINS)
        if skipped:
            # Admins see before anyone wonders why a phone rang instead of buzzing.
            timeline.record(session, run, "alert.opted_out",
                            {"count": len(skipped), "recipients": skipped,
                             "reason": "replied STOP to our texts; they get a call instead"}, audience=ADMINS)
    return sum(1 for r in rows if r["status"] == QUEUED)


def _named(row: dict) -> dict:
    return {"name": row["recipient_name"], "role": row["recipient_role"]}


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
