"""Escalation: silence after an alert that needs an acknowledgement becomes a call, then a notice.

The schedule lives in the database (`Alert.escalate_at`), not in memory, so a restart in the
middle of a run neither loses nor repeats an escalation:

1. the recipient's primary alert (push/SMS) passes its `escalate_at` unacknowledged
   -> a voice call (occasion "escalation") with its own `escalate_at`;
2. that call passes its `escalate_at` unacknowledged too
   -> `recipient.unreachable` on the timeline and an SMS to each school admin.

Each due alert is claimed with a conditional UPDATE (`escalated_at IS NULL`) in the same
transaction as what the escalation queues: of two dispatchers, exactly one escalates it.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from emergency.alerts import outbox
from emergency.alerts.acks import find_ack
from emergency.alerts.fanout import without_link
from emergency.alerts.models import CANCELLED, SKIPPED, UNREACHABLE, Alert
from emergency.directory.roles import SCHOOL_ADMIN
from emergency.directory.service import people_of
from emergency.metrics import instruments as metrics
from emergency.playbooks.templates import REPLY_HINT, unreachable_text
from emergency.runs import timeline
from emergency.runs.models import ACTIVE, Run
from emergency.timeutil import utcnow

log = logging.getLogger(__name__)

ESCALATION = "escalation"
UNREACHABLE_NOTICE = "unreachable"
BATCH = 100
NOT_ATTEMPTED = (SKIPPED, UNREACHABLE, CANCELLED)


def run_due_escalations(session: Session) -> int:
    """Escalate every alert whose acknowledgement is overdue; returns how many were escalated.

    A dispatcher job in which each escalation is a transaction of its own: it holds its run's row
    until it commits, and one that fails must not undo the others.
    """
    now = utcnow()
    due = session.execute(
        select(Alert.id, Alert.run_id).join(Run, Run.id == Alert.run_id)
        .where(Alert.escalate_at <= now, Alert.escalated_at.is_(None), Alert.acknowledged_at.is_(None),
               Run.state == ACTIVE)
        .order_by(Alert.escalate_at, Alert.id).limit(BATCH)).all()
    session.rollback()
    escalated = 0
    for alert_id, run_id in due:
        # The run row first, as ending a run does: an all-clear either happens before (and we see
        # it ended) or waits for this escalation to commit and then cancels what it queued.
        run = session.scalar(select(Run).where(Run.id == run_id).with_for_update()
                             .execution_options(populate_existing=True))
        claimed = session.execute(
            update(Alert).where(Alert.id == alert_id, Alert.escalated_at.is_(None), Alert.escalate_at.is_not(None))
            .values(escalated_at=now).execution_options(synchronize_session=False)).rowcount
        if claimed != 1 or not run.is_active:
            session.rollback()  # another dispatcher got it, or the run ended meanwhile
            continue
        alert = session.get(Alert, alert_id, populate_existing=True)
        if find_ack(session, run.id, person_id=alert.person_id, partner_id=alert.partner_id) is None:
            _escalate(session, run, alert)
            escalated += 1
            metrics.escalated()
        session.commit()  # this escalation (see the docstring)
    return escalated


def _escalate(session: Session, run: Run, alert: Alert) -> None:
    if alert.channel == "voice" or alert.occasion == ESCALATION or not alert.to_number:
        _tell_admins(session, run, alert)
    else:
        _call(session, run, alert)


def _call(session: Session, run: Run, alert: Alert) -> None:
    """No acknowledgement yet: phones on silent still ring, so call."""
    seconds = alert.escalate_after_seconds or 0
    event = timeline.record(session, run, "alert.escalated", {
        "alert_id": alert.id, "recipient": alert.recipient_name, "role": alert.recipient_role,
        "kind": alert.recipient_kind, "from_channel": alert.channel, "to_channel": "voice",
        "after_seconds": seconds,
    })
    # The spoken words are the alert's own, without the SMS "Reply OK" hint (the call asks for a key
    # press) or the SMS link.
    spoken = " ".join(without_link(alert.body, run.id).replace(REPLY_HINT, " ").split())
    outbox.queue(session, run, event.seq, ESCALATION, [outbox.Outgoing(
        name=alert.recipient_name, role=alert.recipient_role, number=alert.to_number, channels=["voice"],
        text=spoken, person_id=alert.person_id, partner_id=alert.partner_id, priority=alert.priority,
        requires_ack=True, escalate_after=alert.escalate_after_seconds)], stopped=set())


def channels_tried(session: Session, run: Run, alert: Alert) -> list[str]:
    """The channels the recipient was really tried on in this run (push, sms, voice), in that order."""
    recipient = (Alert.person_id == alert.person_id) if alert.person_id else (Alert.partner_id == alert.partner_id)
    used = set(session.scalars(select(Alert.channel).where(Alert.run_id == run.id, recipient,
                                                           Alert.status.not_in(NOT_ATTEMPTED)).distinct()))
    return [c for c in ("push", "sms", "voice") if c in used]


def _tell_admins(session: Session, run: Run, alert: Alert) -> None:
    """Still silent after the call: the school's admins must know who may need checking on."""
    channels = channels_tried(session, run, alert)
    event = timeline.record(session, run, "recipient.unreachable", {
        "name": alert.recipient_name, "role": alert.recipient_role, "kind": alert.recipient_kind,
        "channels": channels, "alert_id": alert.id,
    })
    # Staff names only: never a phone number, never a student's name (this goes out by SMS).
    body = unreachable_text(run.mode, channels, alert.recipient_name, alert.recipient_role, run.school.name)
    admins = [admin for admin in people_of(session, run.school_id, include_district=False)
              if admin.role == SCHOOL_ADMIN and admin.mobile and admin.id != alert.person_id]
    rows = outbox.queue(session, run, event.seq, UNREACHABLE_NOTICE,
                        [outbox.Outgoing.to(admin, ["sms"], body, record_skipped_text=False) for admin in admins])
    if not rows:
        log.warning("run %s: nobody to tell that %s is unreachable (no school admin with a mobile)",
                    run.id, alert.recipient_role)
