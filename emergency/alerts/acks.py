"""Acknowledgements: a recipient confirms a run's alert, once, by app, SMS or a key press.

An acknowledgement stops that recipient's escalations (every alert of theirs in the run gets
`acknowledged_at`), goes on the run's timeline and is pushed live. `ack_stats` measures how fast
people confirmed, for the live board and the after-action report.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emergency.alerts.ack_tally import ack_tally
from emergency.alerts.delivery import push_summary
from emergency.alerts.models import Acknowledgement, Alert
from emergency.directory.models import Partner, Person
from emergency.errors import Conflict
from emergency.metrics import instruments as metrics
from emergency.runs import timeline
from emergency.runs.models import Run
from emergency.timeutil import iso, utcnow

CHANNELS = ("app", "push", "sms", "voice")  # push: the notification's Acknowledge button


class RunEnded(Conflict):
    """The run is over: there is nothing left to acknowledge."""


def _recipient_filter(model, person_id: int | None, partner_id: int | None):
    if person_id is not None:
        return model.person_id == person_id
    return model.partner_id == partner_id


def find_ack(session: Session, run_id: int, *, person_id: int | None = None,
             partner_id: int | None = None) -> Acknowledgement | None:
    """The recipient's acknowledgement of the run, if there is one."""
    return session.scalar(select(Acknowledgement).where(Acknowledgement.run_id == run_id,
                                                        _recipient_filter(Acknowledgement, person_id, partner_id)))


def first_alert_at(session: Session, run: Run) -> datetime:
    """When the run's first alert was queued (its start if it sent none): the clock acks are timed on."""
    first = session.scalar(select(func.min(Alert.queued_at)).where(Alert.run_id == run.id))
    return first or run.started_at


def _who(person: Person | None, partner: Partner | None, person_id: int | None, partner_id: int | None) -> dict:
    if person_id is not None:
        return {"kind": "person", "id": person_id, "name": person.name if person else "unknown",
                "role": person.role if person else "unknown"}
    return {"kind": "partner", "id": partner_id, "name": partner.name if partner else "unknown", "role": "partner"}


def recipient_of(session: Session, person_id: int | None, partner_id: int | None) -> dict:
    """Name, role and kind of a recipient, as the timeline shows them (never a phone number)."""
    person = session.get(Person, person_id) if person_id is not None else None
    partner = session.get(Partner, partner_id) if partner_id is not None else None
    return _who(person, partner, person_id, partner_id)


def acknowledge(session: Session, run: Run, *, person_id: int | None = None, partner_id: int | None = None,
                channel: str, alert_id: int | None = None) -> tuple[Acknowledgement, bool]:
    """Record that a recipient confirmed the run's alert; returns (ack, created)."""
    if (person_id is None) == (partner_id is None):
        raise ValueError("acknowledge needs exactly one of person_id and partner_id")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
    existing = find_ack(session, run.id, person_id=person_id, partner_id=partner_id)
    if existing is not None:
        # A retry (lost response, a second "OK", a key press after an SMS reply) changes nothing.
        return existing, False
    if not run.is_active:
        raise RunEnded("The run has ended.", extra={"state": run.state})
    now = utcnow()
    ack = Acknowledgement(run_id=run.id, person_id=person_id, partner_id=partner_id, alert_id=alert_id,
                          channel=channel, acknowledged_at=now)
    try:
        with session.begin_nested():
            session.add(ack)
    except IntegrityError:
        # Two acknowledgements raced (an SMS and a key press at once): the unique index let one in.
        existing = find_ack(session, run.id, person_id=person_id, partner_id=partner_id)
        return existing, False
    session.execute(update(Alert).where(Alert.run_id == run.id, _recipient_filter(Alert, person_id, partner_id),
                                        Alert.acknowledged_at.is_(None))
                    .values(acknowledged_at=now, ack_channel=channel)
                    .execution_options(synchronize_session=False))
    who = recipient_of(session, person_id, partner_id)
    seconds = round((now - first_alert_at(session, run)).total_seconds(), 1)
    timeline.record(session, run, "ack.recorded",
                    {**who, "channel": channel, "alert_id": alert_id, "seconds_since_alert": seconds},
                    actor={k: who[k] for k in ("kind", "id", "name", "role")})
    push_summary(session, run)
    metrics.acknowledged(run.mode, seconds)
    return ack, True


def _nearest_rank(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def ack_stats(session: Session, run: Run) -> dict:
    """How fast recipients confirmed: seconds from the run's first alert to each acknowledgement.

    `p90_seconds` is the nearest-rank 90th percentile: 90% of acknowledgements came in by then.
    """
    first = first_alert_at(session, run)
    acks = list(session.scalars(select(Acknowledgement).where(Acknowledgement.run_id == run.id)
                                .order_by(Acknowledgement.acknowledged_at, Acknowledgement.id)))
    tally = ack_tally(session, run.id)
    # Two queries for every name, not one per acknowledgement: a district run can have hundreds.
    people = {p.id: p for p in session.scalars(select(Person).where(
        Person.id.in_([a.person_id for a in acks if a.person_id is not None])))}
    partners = {p.id: p for p in session.scalars(select(Partner).where(
        Partner.id.in_([a.partner_id for a in acks if a.partner_id is not None])))}
    rows = []
    for ack in acks:
        who = _who(people.get(ack.person_id), partners.get(ack.partner_id), ack.person_id, ack.partner_id)
        rows.append({"kind": who["kind"], "id": who["id"], "name": who["name"], "role": who["role"],
                     "channel": ack.channel, "acknowledged_at": iso(ack.acknowledged_at),
                     "seconds": round(max(0.0, (ack.acknowledged_at - first).total_seconds()), 1)})
    seconds = sorted(row["seconds"] for row in rows)
    by_channel: dict[str, int] = {}
    for row in rows:
        by_channel[row["channel"]] = by_channel.get(row["channel"], 0) + 1
    return {
        "first_alert_at": iso(first),
        "expected": tally["asked"],
        "acknowledged": tally["acknowledged"],
        "count": len(rows),
        "by_channel": by_channel,
        "median_seconds": round(statistics.median(seconds), 1) if seconds else None,
        "p90_seconds": _nearest_rank(seconds, 0.9) if seconds else None,
        "acknowledgements": rows,
    }
