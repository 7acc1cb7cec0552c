"""What happens when staff text back: acknowledge, opt out or in, hand check-ins on, or help.

One service for the Twilio webhook and the `emergency sms receive` command. It returns the text
of the SMS reply, or None for no reply at all.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emergency.alerts.acks import RunEnded, acknowledge
from emergency.alerts.models import Alert, InboundMessage
from emergency.alerts.optouts import opt_in, opt_out
from emergency.directory.models import Partner, Person
from emergency.runs.models import ACTIVE, Run
from emergency.sms.checkins import handle
from emergency.sms.grammar import HELP_TEXT, MAX_BODY_CHARS
from emergency.sms.replies import Reply, classify_reply
from emergency.timeutil import utcnow

# Two auto-responders texting each other would loop forever: replies per number are capped.
REPLY_LIMIT = 5
REPLY_WINDOW = timedelta(minutes=5)

ENDED_TEXT = "That alert has ended."
NO_ALERT_TEXT = "There is no alert to confirm right now."


def _sender(session: Session, number: str) -> Person | Partner | None:
    if not number:
        return None
    person = session.scalar(select(Person).where(Person.mobile == number))
    return person or session.scalar(select(Partner).where(Partner.mobile == number))


def latest_alert(session: Session, number: str, *, active_only: bool) -> Alert | None:
    """The most recent alert sent to `number`, optionally only among active runs."""
    query = select(Alert).where(Alert.to_number == number)
    if active_only:
        query = query.join(Run, Run.id == Alert.run_id).where(Run.state == ACTIVE)
    return session.scalar(query.order_by(Alert.id.desc()).limit(1))


def _replies_sent(session: Session, number: str, since) -> int:
    return session.scalar(select(func.count()).select_from(InboundMessage)
                          .where(InboundMessage.from_number == number, InboundMessage.replied.is_(True),
                                 InboundMessage.received_at >= since)) or 0


def confirmation(run: Run, *, created: bool) -> str:
    """One short line naming the action and the school; drills say DRILL."""
    action = run.playbook.get("name") or run.action.title()
    drill = " DRILL" if run.mode == "drill" else ""
    return f"{'Confirmed' if created else 'Already confirmed'}: {action}{drill} at {run.school.name}."


def _acknowledge(session: Session, number: str) -> tuple[str, int | None]:
    alert = latest_alert(session, number, active_only=True)
    if alert is None:
        return (ENDED_TEXT if latest_alert(session, number, active_only=False) else NO_ALERT_TEXT), None
    run = session.get(Run, alert.run_id)
    try:
        _, created = acknowledge(session, run, person_id=alert.person_id, partner_id=alert.partner_id,
                                 channel="sms", alert_id=alert.id)
    except RunEnded:
        return ENDED_TEXT, run.id
    return confirmation(run, created=created), run.id


def _delegate(session: Session, sender: Person | Partner, reply: Reply, number: str) -> tuple[str | None, int | None]:
    """Check-ins and calls for help belong to accountability."""
    alert = latest_alert(session, number, active_only=True)
    run = session.get(Run, alert.run_id) if alert else None
    return handle(session, sender, reply, run), run.id if run else None


def handle_inbound_sms(session: Session, from_number: str, body: str, message_sid: str | None = None) -> str | None:
    """Act on one inbound SMS and return the reply text (None: send no reply)."""
    number = (from_number or "").strip()[:20]
    body = body or ""
    message_sid = (message_sid or "")[:64] or None
    now = utcnow()
    if message_sid and session.scalar(select(InboundMessage.id).where(InboundMessage.provider_sid == message_sid)):
        return None  # Twilio delivered the same message twice: it was handled the first time
    reply = classify_reply(body)
    message = InboundMessage(provider_sid=message_sid, from_number=number, body=body[:MAX_BODY_CHARS],
                             kind=reply.kind, received_at=now, replied=False)
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None  # the duplicate delivery raced the first one
    may_reply = _replies_sent(session, number, now - REPLY_WINDOW) < REPLY_LIMIT
    sender = _sender(session, number)
    text, run_id = None, None
    if reply.kind == "opt_out":
        # Twilio blocks the number and confirms by itself; we record it so we stop trying and call.
        opt_out(session, number, " ".join(body.split()).upper())
    elif reply.kind == "opt_in":
        opt_in(session, number)
    elif sender is None:
        pass  # not someone we alert: answering strangers only invites more traffic
    elif reply.kind == "ack":
        # The message row is written with the acknowledgement, in its transaction.
        message.replied = may_reply
        text, run_id = _acknowledge(session, number)
    elif reply.kind in ("checkin", "help_me"):
        text, run_id = _delegate(session, sender, reply, number)
    else:
        text = HELP_TEXT
    message.run_id = run_id
    message.replied = bool(text) and may_reply
    return text if may_reply else None
