"""The playbook's checklist during a run: each person sees the steps for their role and ticks them.

A tick (or an untick) is a `checklist.ticked` timeline entry with who and when, so the record of a
drill shows that "Call 911 if police are not already informed" was done, by whom and at what
minute. Ticks are per person: every teacher locks their own door.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from emergency.directory.principal import Principal
from emergency.directory.roles import DISTRICT_ADMIN, SCHOOL_ADMIN
from emergency.errors import Conflict, Forbidden, ValidationFailed
from emergency.runs import timeline
from emergency.runs.models import ACTIVE, Run, RunEvent
from emergency.runs.service import get_run
from emergency.timeutil import iso

TICKED = "checklist.ticked"


def roles_of(principal: Principal) -> set[str]:
    """The checklist roles a caller acts as: their own; a district admin also does a school admin's steps."""
    return {principal.role, SCHOOL_ADMIN} if principal.role == DISTRICT_ADMIN else {principal.role}


def _staff_run(session: Session, principal: Principal, run_id: int) -> Run:
    if principal.is_partner:
        raise Forbidden("The checklist is for school staff.")
    return get_run(session, principal, run_id)


def _latest_ticks(session: Session, run: Run) -> dict[tuple[int, object], RunEvent]:
    """(step, person id) -> that person's latest tick of that step."""
    latest: dict[tuple[int, object], RunEvent] = {}
    for event in session.scalars(select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.type == TICKED)
                                 .order_by(RunEvent.seq)):
        latest[(event.payload.get("step"), (event.actor or {}).get("id"))] = event
    return latest


def run_checklist(session: Session, principal: Principal, run_id: int) -> dict:
    """The steps for the caller's role, each with whether the caller ticked it and who else did."""
    run = _staff_run(session, principal, run_id)
    return _view(session, principal, run)


def _view(session: Session, principal: Principal, run: Run) -> dict:
    roles = roles_of(principal)
    ticks = _latest_ticks(session, run)
    steps = []
    for index, step in enumerate(run.playbook.get("checklist", [])):
        if step.get("role") not in roles:
            continue
        done = [event for (number, _who), event in ticks.items() if number == index and event.payload.get("done")]
        mine = next((e for e in done if (e.actor or {}).get("id") == principal.id), None)
        steps.append({"index": index, "step": step.get("step", ""), "role": step.get("role"),
                      "done": mine is not None, "done_at": iso(mine.created_at) if mine else None,
                      "done_by": [{"name": (e.actor or {}).get("name"), "at": iso(e.created_at)}
                                  for e in sorted(done, key=lambda e: e.seq)]})
    return {"run_id": run.id, "roles": sorted(roles), "steps": steps}


def tick(session: Session, principal: Principal, run_id: int, index: int, done: bool) -> dict:
    """Tick (or untick) one step for the caller; recorded on the timeline with who and when."""
    run = _staff_run(session, principal, run_id)
    if run.state != ACTIVE:
        raise Conflict(f"Run {run.id} has ended; its checklist is closed.")
    steps = run.playbook.get("checklist", [])
    if not 0 <= index < len(steps):
        raise ValidationFailed(f"The checklist has no step {index}.", errors={"step": [f"0 to {len(steps) - 1}"]})
    step = steps[index]
    if step.get("role") not in roles_of(principal):
        raise Forbidden(f"Step {index} is for the {step.get('role')} role.")
    timeline.record(session, run, TICKED, {"step": index, "text": step.get("step", ""), "role": step.get("role"),
                                           "done": done}, actor=principal.actor())
    return _view(session, principal, run)
