"""How runs and timeline events look in the API, for staff and for partners."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from emergency.accountability.models import Checkin, StaffStatus
from emergency.accountability.tally import counts_for_run
from emergency.alerts.delivery import summary
from emergency.alerts.models import Acknowledgement
from emergency.directory.principal import Principal
from emergency.runs.models import Run, RunEvent
from emergency.runs.partners import event_for_partner, run_for_partner
from emergency.timeutil import iso


def counts(session: Session, run: Run) -> dict:
    """Alert, acknowledgement and check-in counts of a run."""
    return {"alerts": summary(session, run.id), "accountability": counts_for_run(session, run)}


def caller_state(session: Session, principal: Principal, run: Run) -> dict:
    """What the caller has done in this run: so every phone of theirs shows the same thing."""
    owner = Acknowledgement.partner_id if principal.is_partner else Acknowledgement.person_id
    ack = session.scalar(select(Acknowledgement).where(Acknowledgement.run_id == run.id, owner == principal.id))
    state = {"acknowledged_at": iso(ack.acknowledged_at) if ack else None, "ack_channel": ack.channel if ack else None,
             "status": None, "last_checkin": None}
    if principal.kind == "person":
        status = session.get(StaffStatus, (run.id, principal.id))
        state["status"] = status.status if status else None
        checkin = session.scalar(select(Checkin).where(Checkin.run_id == run.id, Checkin.person_id == principal.id)
                                 .order_by(Checkin.id.desc()).limit(1))
        if checkin is not None:
            state["last_checkin"] = {"id": checkin.id, "room_id": checkin.room_id, "status": checkin.status,
                                     "at": iso(checkin.created_at), "late": checkin.late}
    return state


def run_view(session: Session, principal: Principal, run: Run, *, with_counts: bool = True) -> dict:
    """A run as the API shows it."""
    view = {
        "id": run.id, "school_id": run.school_id,
        "school": {"id": run.school.id, "code": run.school.code, "name": run.school.name},
        "playbook": {"key": run.playbook_key, "name": run.playbook.get("name"), "version": run.playbook_version,
                     "accountability": run.playbook.get("accountability", {})},
        "mode": run.mode, "action": run.action, "directive": run.directive, "location": run.location,
        "note": run.note, "state": run.state, "end_reason": run.end_reason, "end_message": run.end_message,
        "started_by": run.started_by, "ended_by": run.ended_by, "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at), "last_seq": run.last_seq, "superseded_by_id": run.superseded_by_id,
        "facts": run.facts or {}, "checklist": run.playbook.get("checklist", []),
    }
    if with_counts:
        view["counts"] = counts(session, run)
        view["me"] = caller_state(session, principal, run)
    return run_for_partner(view) if principal.is_partner else view


def event_view(principal: Principal, event: RunEvent) -> dict:
    view = {"seq": event.seq, "type": event.type, "at": iso(event.created_at), "actor": event.actor,
            "payload": event.payload}
    return event_for_partner(view) if principal.is_partner else view
