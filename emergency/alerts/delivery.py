"""Applying what the provider tells us about an alert, never moving backwards."""

from __future__ import annotations

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from emergency.alerts.ack_tally import ack_tally
from emergency.alerts.models import (
    ANSWERED,
    BUSY,
    COMPLETED,
    DELIVERED,
    FAILED,
    FINAL,
    NO_ANSWER,
    NOT_REACHED,
    QUEUED,
    RANK,
    SENDING,
    SENT,
    UNDELIVERED,
    Alert,
)
from emergency.alerts.providers.base import ERROR_REASONS
from emergency.realtime.push import ADMINS
from emergency.runs import timeline
from emergency.runs.models import Run
from emergency.timeutil import utcnow

# Twilio message and call statuses, mapped to ours.
PROVIDER_STATUS = {
    "accepted": SENT, "scheduled": SENT, "queued": SENT, "sending": SENT, "sent": SENT,
    "delivered": DELIVERED, "read": DELIVERED, "receiving": SENT, "received": DELIVERED,
    "undelivered": UNDELIVERED, "failed": FAILED, "canceled": FAILED,
    "initiated": SENT, "ringing": SENT, "in-progress": ANSWERED, "answered": ANSWERED,
    "completed": COMPLETED, "busy": BUSY, "no-answer": NO_ANSWER,
}


# The statuses that say the phone was reached: they stamp `delivered_at` (here and in the
# dispatcher's one-statement record of a send's answer).
REACHED_PHONE = frozenset({DELIVERED, ANSWERED, COMPLETED})


def apply_provider_status(session: Session, alert: Alert, provider_status: str,
                          error_code: int | None = None) -> bool:
    """Move the alert forward to what the provider reports; returns whether anything changed.

    Callbacks arrive late, twice or out of order: a status never moves to a lower rank and a
    final status never changes. A `completed` call is not an acknowledgement: voicemail
    completes calls too; only a key press acknowledges (alerts.acks).
    """
    provider_status = (provider_status or "").strip().lower()
    ours = PROVIDER_STATUS.get(provider_status)
    if ours is None or alert.status in FINAL:
        return False
    if RANK[ours] < RANK.get(alert.status, 0):
        return False
    now = utcnow()
    changed = alert.status != ours or alert.provider_status != provider_status
    alert.status = ours
    alert.provider_status = provider_status
    if ours in (SENT, ANSWERED) and alert.sent_at is None:
        alert.sent_at = now
    if ours in REACHED_PHONE and alert.delivered_at is None:
        alert.delivered_at = now
    if ours in FINAL:
        alert.finished_at = now
    if error_code:
        alert.error_code = error_code
        alert.error_message = ERROR_REASONS.get(error_code, f"provider error {error_code}")
    if ours in NOT_REACHED and changed:
        record_failure(session, alert)
    return changed


def record_failure(session: Session, alert: Alert) -> None:
    """Put a failed delivery on the run's timeline, so the principal sees who was not reached."""
    run = session.get(Run, alert.run_id)
    timeline.record(session, run, "alert.failed", {
        "alert_id": alert.id, "recipient": alert.recipient_name, "role": alert.recipient_role,
        "channel": alert.channel, "status": alert.status, "error_code": alert.error_code,
        "reason": alert.error_message,
    })


# Built once (the summary is pushed about once a second per run while it sends).
_BY_STATUS = (select(Alert.channel, Alert.status, func.count()).where(Alert.run_id == bindparam("run_id"))
              .group_by(Alert.channel, Alert.status))
_RECIPIENTS = select(func.count(func.distinct(case((Alert.person_id.is_not(None), Alert.person_id)))),
                     func.count(func.distinct(case((Alert.partner_id.is_not(None), Alert.partner_id))))) \
    .where(Alert.run_id == bindparam("run_id"))


def summary(session: Session, run_id: int) -> dict:
    """Counts of the run's alerts by channel and status, plus acknowledgements (`ack_tally`)."""
    rows = session.execute(_BY_STATUS, {"run_id": run_id}).all()
    by_channel: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for channel, status, count in rows:
        by_channel.setdefault(channel, {})[status] = count
        totals[status] = totals.get(status, 0) + count
    recipients = session.execute(_RECIPIENTS, {"run_id": run_id}).one()
    acks = ack_tally(session, run_id)
    pending = totals.get(QUEUED, 0) + totals.get(SENDING, 0)
    return {"total": sum(totals.values()), "by_status": totals, "by_channel": by_channel,
            "pending": pending, "recipients": recipients[0] + recipients[1],
            "acknowledged": acks["acknowledged"], "asked": acks["asked"]}


def push_summary(session: Session, run: Run, **extra) -> None:
    """Queue the run's delivery summary (`alert.delivery`) for those who run the board.

    The school's admins (and partners, in a real run) act on delivery counts; teachers do not, and
    their phones would otherwise get a copy with every send and every acknowledgement.
    """
    timeline.push_only(session, run, "alert.delivery", {**summary(session, run.id), **extra}, audience=ADMINS)
