"""Appending to a run's timeline, and the live push that goes with each entry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from emergency.realtime.push import Push, queue
from emergency.runs.models import Run, RunEvent
from emergency.timeutil import iso, utcnow

SYSTEM = {"kind": "system", "name": "emergency"}

# Never sent to partners: staff contact details and anything that may name a student.
_PARTNER_HIDDEN = {"mobile", "to", "to_number", "phone", "email", "missing_students", "injured_students",
                   "students", "body", "note_private", "number"}


def redact_for_partner(value: Any) -> Any:
    """Remove staff contacts and student names from a payload, at any depth."""
    if isinstance(value, dict):
        return {k: redact_for_partner(v) for k, v in value.items() if k not in _PARTNER_HIDDEN}
    if isinstance(value, list):
        return [redact_for_partner(v) for v in value]
    return value


def next_seq(session: Session, run: Run) -> int:
    """Allocate the run's next sequence number; the row update serialises concurrent writers."""
    seq = session.execute(
        update(Run).where(Run.id == run.id).values(last_seq=Run.last_seq + 1).returning(Run.last_seq)
    ).scalar_one()
    run.last_seq = seq
    return seq


def envelope(run: Run, event: RunEvent) -> dict:
    """What a live client receives for a timeline entry."""
    return {
        "run_id": run.id, "school_id": run.school_id, "mode": run.mode, "seq": event.seq,
        "type": event.type, "at": iso(event.created_at), "actor": event.actor, "payload": event.payload,
        "run": {"id": run.id, "state": run.state, "action": run.action, "directive": run.directive,
                "mode": run.mode, "playbook": run.playbook_key, "location": run.location},
    }


def record(session: Session, run: Run, type_: str, payload: dict | None = None, *,
           actor: dict | None = None, push: bool = True, partner_visible: bool = True,
           push_name: str | None = None) -> RunEvent:
    """Append an event to the run's timeline (in the caller's transaction) and queue its live push."""
    event = RunEvent(run_id=run.id, seq=next_seq(session, run), type=type_, actor=actor or SYSTEM,
                     payload=payload or {}, created_at=utcnow())
    session.add(event)
    session.flush()
    if push:
        data = envelope(run, event)
        partner_data = None
        if partner_visible and run.mode == "real":
            partner_data = redact_for_partner(data)
        queue(session, Push(push_name or type_, run.school_id, data, partner_data))
    return event


def push_only(session: Session, run: Run, name: str, payload: dict, *, partner_visible: bool = True) -> None:
    """A live event that is not a timeline entry (summaries such as accountability.updated)."""
    data = {"run_id": run.id, "school_id": run.school_id, "mode": run.mode, "seq": run.last_seq,
            "type": name, "at": iso(utcnow()), "payload": payload}
    partner_data = redact_for_partner(data) if partner_visible and run.mode == "real" else None
    queue(session, Push(name, run.school_id, data, partner_data))


def events_after(session: Session, run_id: int, after_seq: int = 0, limit: int = 1000) -> list[RunEvent]:
    """Timeline events with seq > after_seq, in order."""
    return list(session.scalars(select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
                                .order_by(RunEvent.seq).limit(limit)))
