"""Starting, changing, updating and ending runs: the state machine and who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emergency.db import is_postgres
from emergency.directory.models import School
from emergency.directory.principal import Principal
from emergency.directory.service import get_school
from emergency.errors import Conflict, Forbidden, NotFound, ValidationFailed
from emergency.playbooks.drill_facts import validate_facts
from emergency.playbooks.model import Playbook
from emergency.runs import announcements, timeline
from emergency.runs.models import ACTIVE, CANCELLED, ENDED, SUPERSEDED, IdempotencyKey, Run
from emergency.timeutil import utcnow

ADMIN_ONLY = "Only the school's admins can do that."


@dataclass
class StartRequest:
    school_id: int
    playbook: str
    mode: str
    confirm: bool = False
    location: str | None = None
    note: str | None = None
    variant: str | None = None
    facts: dict | None = None


class PlaybookSource:
    """Where services find playbooks: anything with get(key) -> Playbook | None."""

    def get(self, key: str) -> Playbook | None: ...


def playbook_of(run: Run) -> Playbook:
    """The exact playbook version the run follows (its stored snapshot)."""
    return Playbook.from_dict(run.playbook)


def get_run(session: Session, principal: Principal, run_id: int, *, for_update: bool = False) -> Run:
    """A run the caller may see; partners see only real runs at the schools they cover."""
    query = _RUN_FOR_UPDATE if for_update and is_postgres(session) else _RUN
    return visible_run(principal, run_id, session.scalar(query, {"run_id": run_id}))


def visible_run(principal: Principal, run_id: int, run: Run | None) -> Run:
    """`run` (read for `run_id`, or None) if the caller may see it; the same 404 whether it exists or not."""
    if run is None or not principal.sees_school(run.school_id) or (principal.is_partner and run.mode != "real"):
        raise NotFound(f"Run {run_id} was not found.")
    return run


# Built once: every request about a run starts here.
_RUN = select(Run).where(Run.id == bindparam("run_id"))
_RUN_FOR_UPDATE = _RUN.with_for_update()


def active_run(session: Session, school_id: int) -> Run | None:
    return session.scalar(select(Run).where(Run.school_id == school_id, Run.state == ACTIVE))


def _playbook(source: PlaybookSource, key: str) -> Playbook:
    playbook = source.get(key)
    if playbook is None:
        raise ValidationFailed(f"There is no playbook '{key}'.", errors={"playbook": [f"unknown playbook '{key}'"]})
    return playbook


def _check_may_start(principal: Principal, playbook: Playbook, mode: str) -> None:
    if principal.is_partner:
        raise Forbidden("Partners cannot start runs.")
    if mode not in playbook.modes:
        raise ValidationFailed(f"The {playbook.name} playbook cannot run as a {mode}.",
                               errors={"mode": [f"allowed: {', '.join(playbook.modes)}"]})
    if not playbook.can_start(principal.role, mode):
        roles = ", ".join(playbook.start_roles.get(mode, ())) or "nobody"
        raise Forbidden(f"A {principal.role} cannot start a {mode} of {playbook.name}; allowed: {roles}.")


def _existing_for_key(session: Session, principal: Principal, key: str | None) -> Run | None:
    if not key:
        return None
    row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.account_id == principal.account_id,
                                                      IdempotencyKey.key == key))
    return session.get(Run, row.run_id) if row else None


def start_run(session: Session, principal: Principal, request: StartRequest, playbooks: PlaybookSource, *,
              idempotency_key: str | None = None) -> tuple[Run, bool]:
    """Start a drill or real run; returns (run, created). A repeated Idempotency-Key returns the same run."""
    existing = _existing_for_key(session, principal, idempotency_key)
    if existing is not None:
        return existing, False
    school = get_school(session, principal, request.school_id)
    playbook = _playbook(playbooks, request.playbook)
    _check_may_start(principal, playbook, request.mode)
    if request.mode == "real" and playbook.confirm_real and not request.confirm:
        raise ValidationFailed(
            f"Starting a REAL {playbook.name} needs a deliberate confirmation: send \"confirm\": true.",
            errors={"confirm": ["required for a real emergency"]})
    if request.facts:
        request.facts = {k: v for k, v in validate_facts(playbook, request.facts).items() if v is not None}
    _check_variant(playbook, request.variant)
    try:
        run, created = _start(session, principal, school, playbook, request, idempotency_key)
        session.flush()
    except (IntegrityError, Conflict) as exc:
        # Two starts raced: the same Idempotency-Key, or a second run for the same school. With the
        # same key, the other start may have committed after the key was looked up above, and then
        # this one finds its run already active (Conflict) rather than the key taken (IntegrityError).
        session.rollback()
        existing = _existing_for_key(session, principal, idempotency_key)
        if existing is not None:
            return existing, False
        if isinstance(exc, Conflict):
            raise
        other = active_run(session, school.id)
        raise Conflict("Another run started at this school at the same moment.",
                       extra={"active_run_id": other.id if other else None}) from None
    return run, created


def _check_variant(playbook: Playbook, variant: str | None) -> None:
    if variant and variant not in playbook.variants:
        raise ValidationFailed(f"The {playbook.name} playbook has no variant '{variant}'.",
                               errors={"variant": [f"allowed: {', '.join(playbook.variants) or 'none'}"]})


def _start(session: Session, principal: Principal, school: School, playbook: Playbook, request: StartRequest,
           idempotency_key: str | None) -> tuple[Run, bool]:
    now = utcnow()
    current = active_run(session, school.id)
    if current is not None:
        if request.mode == "real" and current.mode == "drill":
            _end(session, current, SUPERSEDED, principal.actor(), "A real emergency has started; the drill is over.")
        else:
            what = "drill" if current.mode == "drill" else "real emergency"
            hint = " Change its action instead." if current.mode == "real" else ""
            raise Conflict(f"A {what} ({current.playbook_key}) is already active at {school.name}.{hint}",
                           extra={"active_run_id": current.id})
    run = Run(
        school_id=school.id, school=school, playbook_key=playbook.key, playbook_version=playbook.version,
        playbook=playbook.to_dict(), mode=request.mode, action=playbook.action,
        directive=playbook.directive_for(request.variant), location=request.location, note=request.note,
        state=ACTIVE, started_by=principal.actor(),
        started_by_person_id=principal.id if principal.kind == "person" else None,
        started_at=now, last_seq=0, facts=dict(request.facts or {}),
    )
    if request.variant:
        run.facts["variant"] = request.variant
    session.add(run)
    session.flush()
    if current is not None:
        current.superseded_by_id = run.id
    if idempotency_key:
        session.add(IdempotencyKey(account_id=principal.account_id, key=idempotency_key, run_id=run.id))
    payload = {"playbook": playbook.key, "playbook_version": playbook.version, "name": playbook.name,
               "action": run.action, "directive": run.directive, "mode": run.mode, "location": run.location,
               "note": run.note, "superseded_run_id": current.id if current else None}
    event = timeline.record(session, run, "run.started", payload, actor=principal.actor())
    announcements.announce(session, run, "start", event.seq)
    session.flush()
    return run, True


def _end(session: Session, run: Run, state: str, actor: dict, message: str | None) -> None:
    run.state = state
    run.end_reason = {ENDED: "all_clear", CANCELLED: "cancelled", SUPERSEDED: "superseded"}[state]
    run.end_message = message
    run.ended_at = utcnow()
    run.ended_by = actor
    session.flush()
    announcements.withdraw(session, run)
    event = timeline.record(session, run, "run.ended",
                            {"reason": run.end_reason, "message": message, "state": state}, actor=actor)
    occasion = {ENDED: "all_clear", CANCELLED: "cancel", SUPERSEDED: "superseded"}[state]
    announcements.announce(session, run, occasion, event.seq, extra={"message": message or "", "reason": message or ""})


def _admin_run(session: Session, principal: Principal, run_id: int, *, allow_initiator: bool = False) -> Run:
    run = get_run(session, principal, run_id, for_update=True)
    if principal.is_partner:
        raise Forbidden("Partners have read-only access.")
    is_initiator = principal.kind == "person" and run.started_by_person_id == principal.id
    if not (principal.is_admin_of(run.school_id) or (allow_initiator and is_initiator)):
        raise Forbidden(ADMIN_ONLY)
    if not run.is_active:
        raise Conflict(f"Run {run.id} has already ended ({run.end_reason}); it cannot be changed.",
                       extra={"state": run.state})
    return run


def post_update(session: Session, principal: Principal, run_id: int, message: str) -> Run:
    """Send an update to everyone the run concerns."""
    run = _admin_run(session, principal, run_id)
    event = timeline.record(session, run, "run.updated", {"message": message}, actor=principal.actor())
    announcements.announce(session, run, "update", event.seq, extra={"message": message})
    return run


def change_action(session: Session, principal: Principal, run_id: int, playbooks: PlaybookSource, *,
                  playbook_key: str, location: str | None = None, variant: str | None = None) -> Run:
    """Switch an active run to another playbook (secure -> lockdown), keeping its history."""
    run = _admin_run(session, principal, run_id)
    playbook = _playbook(playbooks, playbook_key)
    if run.mode not in playbook.modes:
        raise ValidationFailed(f"The {playbook.name} playbook cannot run as a {run.mode}.",
                               errors={"playbook": [f"no {run.mode} mode"]})
    _check_variant(playbook, variant)
    if (playbook.key == run.playbook_key and playbook.directive_for(variant) == run.directive
            and (not location or location == run.location)):
        # The action already in force: a double tap or a retry changes nothing and tells nobody again.
        return run
    previous = {"playbook": run.playbook_key, "action": run.action, "directive": run.directive}
    run.playbook_key, run.playbook_version, run.playbook = playbook.key, playbook.version, playbook.to_dict()
    run.action, run.directive = playbook.action, playbook.directive_for(variant)
    run.facts = {k: v for k, v in (run.facts or {}).items() if k != "variant"}
    if variant:
        run.facts["variant"] = variant
    if location:
        run.location = location
    event = timeline.record(session, run, "run.action_changed",
                            {"from": previous, "playbook": playbook.key, "playbook_version": playbook.version,
                             "name": playbook.name, "action": run.action, "directive": run.directive,
                             "location": run.location}, actor=principal.actor())
    announcements.announce(session, run, "start", event.seq)
    return run


def all_clear(session: Session, principal: Principal, run_id: int, message: str | None = None) -> Run:
    """End the run with the all-clear."""
    run = _admin_run(session, principal, run_id)
    _end(session, run, ENDED, principal.actor(), message)
    return run


def cancel(session: Session, principal: Principal, run_id: int, reason: str) -> Run:
    """End the run as a false alarm; the person who started it may cancel it too."""
    run = _admin_run(session, principal, run_id, allow_initiator=True)
    _end(session, run, CANCELLED, principal.actor(), reason)
    return run


def list_runs(session: Session, principal: Principal, *, school_id: int | None = None, state: str | None = None,
              mode: str | None = None, started_from: datetime | None = None, started_to: datetime | None = None,
              page: int = 1, per_page: int = 50) -> tuple[list[Run], int]:
    """Runs in the caller's scope, newest first, filtered and paginated."""
    query = select(Run)
    if principal.school_ids is not None:
        query = query.where(Run.school_id.in_(principal.school_ids or [-1]))
    if principal.is_partner:
        query = query.where(Run.mode == "real")
    if school_id is not None:
        query = query.where(Run.school_id == school_id)
    if state:
        query = query.where(Run.state == state)
    if mode:
        query = query.where(Run.mode == mode)
    if started_from:
        query = query.where(Run.started_at >= started_from)
    if started_to:
        query = query.where(Run.started_at < started_to)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(Run.started_at.desc(), Run.id.desc())
                           .offset((page - 1) * per_page).limit(per_page))
    return list(rows), total
