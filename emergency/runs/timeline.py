"""Appending to a run's timeline, and the live push that goes with each entry."""

from __future__ import annotations

from functools import cache

from sqlalchemy import and_, bindparam, exists, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from emergency import logs
from emergency.db import is_postgres
from emergency.realtime.push import SCHOOL, Push, queue
from emergency.runs.models import Run, RunEvent
from emergency.runs.partners import live_event_for_partner
from emergency.timeutil import iso, utcnow

SYSTEM = {"kind": "system", "name": "emergency"}

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
           push_name: str | None = None, audience: str = SCHOOL) -> RunEvent:
    """Append an event to the run's timeline (in the caller's transaction) and queue its live push to `audience`."""
    logs.bind_run(run)
    event = append(session, run, RunEvent(run_id=run.id, type=type_, actor=actor or SYSTEM, payload=payload or {},
                                          created_at=utcnow()))
    if push:
        publish(session, run, event, partner_visible=partner_visible, push_name=push_name, audience=audience)
    return event


def publish(session: Session, run: Run, event: RunEvent, *, partner_visible: bool = True,
            push_name: str | None = None, audience: str = SCHOOL, person_ids: tuple[int, ...] = ()) -> None:
    """Queue the live push of a timeline entry (sent when the session commits) to `audience` and `person_ids`."""
    data = envelope(run, event)
    partner_data = live_event_for_partner(data) if partner_visible and run.mode == "real" else None
    queue(session, Push(push_name or event.type, run.school_id, data, partner_data, person_ids=person_ids,
                        audience=audience))


def append(session: Session, run: Run, event: RunEvent) -> RunEvent:
    """Store a new (unsaved) event as the run's next entry, in the caller's transaction; no push."""
    if not is_postgres(session):
        event.seq = next_seq(session, run)
        session.add(event)
        session.flush()
        return event
    # PostgreSQL: the sequence number and the entry in one round trip. The run's row stays locked from
    # here to the commit and every writer of the run queues on it, so the fewer trips the better.
    appended = append_cte()
    event.id, event.seq = session.execute(select(appended.c.id, appended.c.seq), append_params(event)).one()
    appended_to(run, event)
    return event


def appended_to(run: Run, event: RunEvent) -> None:
    """Note on the loaded run the sequence number an append_cte() statement gave `event`."""
    set_committed_value(run, "last_seq", max(run.last_seq or 0, event.seq))  # the database has it: no flush


@cache
def append_cte(guard=None, payload=None):
    """PostgreSQL: `WITH seq AS (UPDATE runs ... RETURNING last_seq) INSERT INTO run_events ... RETURNING id, seq`.

    Built once. Its values are append_params(); with `guard` (a CTE) it appends only if the guard has a
    row, and only after the guard ran. `payload`: an SQL expression for the payload, in place of the value.
    """
    events, runs = RunEvent.__table__, Run.__table__
    condition = runs.c.id == bindparam("event_run_id")
    if guard is not None:
        condition = and_(condition, exists(select(guard)))
    seq = (runs.update().where(condition).values(last_seq=runs.c.last_seq + 1)
           .returning(runs.c.last_seq).cte("seq"))
    values = [bindparam(f"event_{name}", type_=events.c[name].type) for name in ("type", "actor", "payload",
                                                                                   "created_at")]
    if payload is not None:
        values[2] = payload
    return events.insert().from_select(
        ["run_id", "seq", "type", "actor", "payload", "created_at"],
        select(bindparam("event_run_id", type_=events.c.run_id.type), seq.c.last_seq, *values),
    ).returning(events.c.id, events.c.seq).cte("appended")


def append_params(event: RunEvent) -> dict:
    """The values of an append_cte() statement for a new (unsaved) event."""
    return {"event_run_id": event.run_id, "event_type": event.type, "event_actor": event.actor,
            "event_payload": event.payload, "event_created_at": event.created_at}


def push_only(session: Session, run: Run, name: str, payload: dict, *, partner_visible: bool = True,
              coalesce: bool = False, audience: str = SCHOOL) -> None:
    """A live event that is not a timeline entry (summaries such as accountability.updated), to `audience`.

    With `coalesce`, it is a summary of the run as of its `seq`: a later one replaces it (realtime.coalesce).
    """
    data = {"run_id": run.id, "school_id": run.school_id, "mode": run.mode, "seq": run.last_seq,
            "type": name, "at": iso(utcnow()), "payload": payload}
    partner_data = live_event_for_partner(data) if partner_visible and run.mode == "real" else None
    queue(session, Push(name, run.school_id, data, partner_data, coalesce_key=f"{name}:{run.id}" if coalesce else None,
                        version=run.last_seq or 0, audience=audience))


def events_after(session: Session, run_id: int, after_seq: int = 0, limit: int = 1000) -> list[RunEvent]:
    """Timeline events with seq > after_seq, in order."""
    return list(session.scalars(select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
                                .order_by(RunEvent.seq).limit(limit)))
