"""Drill compliance for schools: which drills count, where each school stands, the drill log.

The rules engine (`engine.py`) is pure; this module feeds it. It decides which runs are drill
records (ended drills, under their playbook's compliance category), adds the drills entered by
hand, and applies the caller's scope. docs/compliance.md explains what counts and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from emergency.compliance.engine import DrillRecord, RuleResult, evaluate, summarize
from emergency.compliance.models import ManualDrill
from emergency.compliance.rules import CATEGORIES, RuleSet, load_rules, school_year_bounds, school_year_of
from emergency.directory.models import School
from emergency.directory.principal import Principal
from emergency.directory.roles import ADMIN_ROLES
from emergency.directory.service import get_school, schools_in_scope
from emergency.errors import Conflict, DomainError, Forbidden, ValidationFailed
from emergency.playbooks.drill_facts import parse_clock, validate_facts
from emergency.runs import timeline
from emergency.runs.models import ACTIVE, ENDED, Run
from emergency.runs.service import get_run, playbook_of
from emergency.timeutil import iso, utcnow

log = logging.getLogger(__name__)

RULES_KEY = "compliance_rules"
PROBLEMS_KEY = "compliance_rules_problems"
ADMINS_ONLY = "Only school and district admins can see drill compliance."

# A hand-entered drill this close to an already recorded one of the same kind is a double entry.
DUPLICATE_WINDOW = timedelta(hours=1)
# Clock skew between a phone and the server should not stop someone recording a drill just held.
FUTURE_TOLERANCE = timedelta(minutes=10)


class RulesUnavailable(DomainError):
    """The rules file is missing or invalid: compliance cannot be computed until it is fixed."""

    status = 503
    code = "service_unavailable"


# --- the rules file --------------------------------------------------------------------------

def load_rules_into(app: Flask) -> RuleSet | None:
    """Read COMPLIANCE_RULES onto the app, logging every problem; never raises."""
    path = app.config.get("COMPLIANCE_RULES") or ""
    if not path:
        ruleset, problems = None, ["COMPLIANCE_RULES is not set"]
    else:
        ruleset, found = load_rules(path)
        problems = [str(problem) for problem in found]
    for problem in problems:
        log.error("compliance rules problem: %s", problem)
    app.extensions[RULES_KEY] = ruleset
    app.extensions[PROBLEMS_KEY] = problems
    return ruleset


def rules_for(app: Flask) -> RuleSet:
    """The app's drill rules, loaded on first use; a 503 naming the file when they are unusable."""
    if RULES_KEY not in app.extensions:
        load_rules_into(app)
    ruleset = app.extensions[RULES_KEY]
    if ruleset is None:
        problems = app.extensions.get(PROBLEMS_KEY, [])
        path = app.config.get("COMPLIANCE_RULES") or "(not set)"
        raise RulesUnavailable(
            f"Drill compliance is unavailable: the rules file {path} has {len(problems)} "
            f"problem{'s' if len(problems) != 1 else ''}. They are in the server log; run "
            f"`emergency compliance check {path}` to list them, fix the file and restart.")
    return ruleset


# --- the school's clock ----------------------------------------------------------------------

def zone_of(school: School) -> ZoneInfo:
    """The school's time zone (UTC if the directory holds an unknown one)."""
    try:
        return ZoneInfo(school.timezone)
    except Exception:  # a typo in the directory must not hide the school's drills
        return ZoneInfo("UTC")


def local_today(school: School) -> date:
    """Today's date where the school is."""
    return utcnow().astimezone(zone_of(school)).date()


def dismissal_of(school: School, facts: dict | None = None) -> time | None:
    """Normal dismissal that day: the drill's `dismissal_time` fact, else the school's ("15:10"), else None."""
    return parse_clock(str((facts or {}).get("dismissal_time") or school.dismissal_time or ""))


# --- drill facts ---------------------------------------------------------------------------

def record_facts(session: Session, principal: Principal, run_id: int, facts: dict) -> Run:
    """Record compliance facts on an active or ended drill (secondary exit used, parents notified on)."""
    run = get_run(session, principal, run_id, for_update=True)
    if principal.is_partner or not principal.is_admin_of(run.school_id):
        raise Forbidden("Only the school's admins can record drill facts.")
    if run.mode != "drill":
        raise Conflict(f"Run {run.id} is a real emergency; drill facts are recorded on drills only.")
    if run.state not in (ACTIVE, ENDED):
        raise Conflict(f"Run {run.id} was {run.state}; it does not count as a drill, so it has no drill facts.",
                       extra={"state": run.state})
    if not facts:
        raise ValidationFailed("Send at least one drill fact.", errors={"facts": ["no facts given"]})
    clean = validate_facts(playbook_of(run), facts, field_prefix="")
    merged = {**(run.facts or {}), **clean}
    # A new dict, so the JSON column is seen as changed.
    run.facts = {key: value for key, value in merged.items() if value is not None}
    timeline.record(session, run, "run.facts_recorded", {"facts": clean}, actor=principal.actor())
    return run


# --- the drill log ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LoggedDrill:
    """One drill that counts: a run that ended with the all-clear, or a record entered by hand."""

    school: School
    record: DrillRecord
    run: Run | None = None
    manual_drill: ManualDrill | None = None

    def view(self) -> dict:
        """The drill as the drill log shows it."""
        record, school = self.record, self.school
        view = {
            "source": "manual" if record.manual else "system",
            "manual": record.manual,
            "run_id": self.run.id if self.run else None,
            "manual_drill_id": self.manual_drill.id if self.manual_drill else None,
            "school": {"id": school.id, "code": school.code, "name": school.name},
            "category": record.category,
            "playbook": self.run.playbook.get("name") if self.run else None,
            "held_at": iso(record.held_at),
            "date": record.day.isoformat(),
            "time": record.held_at.strftime("%H:%M"),
            "duration_seconds": record.duration_seconds,
            "secondary_exit": record.used_secondary_exit,
            "summer": record.summer,
            "parents_notified_on": record.parents_notified_on.isoformat() if record.parents_notified_on else None,
            "note": None,
            "recorded_by": None,
            "recorded_at": None,
        }
        if self.run is not None:
            view.update(note=self.run.note, recorded_by=_who(self.run.started_by), recorded_at=iso(self.run.ended_at))
        if self.manual_drill is not None:
            view.update(note=self.manual_drill.note, recorded_by=_who(self.manual_drill.entered_by),
                        recorded_at=iso(self.manual_drill.entered_at))
        return view


def _who(actor: dict | None) -> dict | None:
    return {"name": actor.get("name"), "role": actor.get("role")} if actor else None


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def drill_of_run(run: Run, school: School) -> LoggedDrill | None:
    """The drill record of a run, or None if the run does not count.

    Only drills that ended with the all-clear count: a cancelled drill was a false start and a
    superseded one was cut short by a real emergency. The category is the one the playbook
    snapshot declares at the end (an action change during the drill counts as its last action).
    """
    category = (run.playbook or {}).get("compliance_category")
    if run.mode != "drill" or run.state != ENDED or category not in CATEGORIES:
        return None
    facts = run.facts or {}
    duration = int((run.ended_at - run.started_at).total_seconds()) if run.ended_at else None
    record = DrillRecord(
        held_at=run.started_at.astimezone(zone_of(school)),
        category=category,
        duration_seconds=duration,
        secondary_exit=facts.get("secondary_exit") is True,
        summer=facts.get("summer") is True,
        parents_notified_on=_date(facts.get("parents_notified_on")),
        dismissal_time=dismissal_of(school, facts),
    )
    return LoggedDrill(school, record, run=run)


def drill_of_manual(manual: ManualDrill, school: School) -> LoggedDrill:
    """The drill record of a hand-entered drill."""
    record = DrillRecord(
        held_at=manual.held_at.astimezone(zone_of(school)),
        category=manual.category,
        duration_seconds=manual.duration_seconds,
        secondary_exit=manual.secondary_exit,
        summer=manual.summer,
        parents_notified_on=manual.parents_notified_on,
        dismissal_time=dismissal_of(school),
        manual=True,
    )
    return LoggedDrill(school, record, manual_drill=manual)


def drill_log(session: Session, schools: list[School], first: date, last: date) -> list[LoggedDrill]:
    """Every drill that counts at these schools, held (local date) from `first` to `last`, oldest first."""
    if not schools:
        return []
    by_id = {school.id: school for school in schools}
    # A day's margin either side in UTC covers every time zone; the local date decides below.
    since = datetime.combine(first - timedelta(days=1), time(), tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=2), time(), tzinfo=UTC)
    runs = session.scalars(select(Run).where(
        Run.school_id.in_(by_id), Run.mode == "drill", Run.state == ENDED,
        Run.started_at >= since, Run.started_at < until))
    manuals = session.scalars(select(ManualDrill).where(
        ManualDrill.school_id.in_(by_id), ManualDrill.held_at >= since, ManualDrill.held_at < until))
    drills = [drill for run in runs if (drill := drill_of_run(run, by_id[run.school_id])) is not None]
    drills += [drill_of_manual(manual, by_id[manual.school_id]) for manual in manuals]
    drills = [drill for drill in drills if first <= drill.record.day <= last]
    return sorted(drills, key=lambda d: (d.record.held_at.astimezone(UTC), d.school.code))


# --- the report ------------------------------------------------------------------------------

def result_view(result: RuleResult) -> dict:
    """One rule's result as the API shows it."""
    return {
        "rule": result.rule, "description": result.description, "required": result.required,
        "done": result.done, "remaining": result.remaining, "status": result.status,
        "next_deadline": result.next_deadline.isoformat() if result.next_deadline else None,
        "detail": result.detail,
    }


def _school_view(school: School) -> dict:
    return {"id": school.id, "code": school.code, "name": school.name}


def school_compliance(session: Session, ruleset: RuleSet, school: School, *, year: int | None = None,
                      today: date | None = None, summer_session_start: date | None = None) -> dict:
    """Where one school stands on every rule for a school year (default: the current one)."""
    today = today or local_today(school)
    year = school_year_of(today, ruleset) if year is None else year
    first, last = school_year_bounds(year, ruleset)
    drills = drill_log(session, [school], first, last)
    results = evaluate(ruleset, [drill.record for drill in drills], year=year, today=today,
                       summer_session_start=summer_session_start)
    return {
        "school": _school_view(school),
        "year": year,
        "school_year": {"start": first.isoformat(), "end": last.isoformat()},
        "today": today.isoformat(),
        "rules_file": {"name": ruleset.name, "source": ruleset.source},
        "summary": summarize(results),
        "drills": {"total": len(drills), "manual": sum(1 for drill in drills if drill.record.manual)},
        "rules": [result_view(result) for result in results],
    }


def district_compliance(session: Session, ruleset: RuleSet, schools: list[School], *, year: int | None = None,
                        today: date | None = None, summer_session_start: date | None = None) -> dict:
    """Each school's overall status and the rules it is behind on, plus how many schools are in each state."""
    year = year if year is not None else school_year_of(today or district_today(schools), ruleset)
    first, last = school_year_bounds(year, ruleset)
    rows = []
    for school in schools:
        report = school_compliance(session, ruleset, school, year=year, today=today,
                                   summer_session_start=summer_session_start)
        rows.append({
            "school": report["school"], "status": report["summary"]["status"],
            "counts": report["summary"]["counts"], "drills": report["drills"],
            "behind": [rule for rule in report["rules"] if rule["status"] == "behind"],
        })
    statuses = [row["status"] for row in rows]
    return {
        "year": year,
        "school_year": {"start": first.isoformat(), "end": last.isoformat()},
        "today": (today or district_today(schools)).isoformat(),
        "rules_file": {"name": ruleset.name, "source": ruleset.source},
        "totals": {status: statuses.count(status) for status in ("met", "on_track", "behind", "not_applicable")},
        "schools": rows,
    }


def district_today(schools: list[School]) -> date:
    """Today where the first of these schools is (a district shares one calendar)."""
    return local_today(schools[0]) if schools else utcnow().date()


def require_admin(principal: Principal, school_id: int | None = None) -> None:
    """403 unless the caller is an admin (of `school_id`, when given)."""
    if principal.role not in ADMIN_ROLES or (school_id is not None and not principal.is_admin_of(school_id)):
        raise Forbidden(ADMINS_ONLY)


def admin_school(session: Session, principal: Principal, school_id: int) -> School:
    """A school in the caller's scope that they administer (404 outside scope, 403 for non-admins)."""
    school = get_school(session, principal, school_id)
    require_admin(principal, school.id)
    return school


def compliance_for(session: Session, principal: Principal, ruleset: RuleSet, *, school_id: int | None,
                   year: int | None = None, today: date | None = None,
                   summer_session_start: date | None = None) -> dict:
    """One school's report, or the district summary of every school in the caller's scope."""
    require_admin(principal)
    if school_id is not None:
        school = admin_school(session, principal, school_id)
        return school_compliance(session, ruleset, school, year=year, today=today,
                                 summer_session_start=summer_session_start)
    return district_compliance(session, ruleset, schools_in_scope(session, principal), year=year, today=today,
                               summer_session_start=summer_session_start)


def year_scope(session: Session, principal: Principal, ruleset: RuleSet, *, school_id: int | None,
               year: int | None, today: date | None) -> tuple[list[School], int, date, date]:
    """An admin's schools (one, or all in scope) and the school year asked for (default: the current one)."""
    require_admin(principal)
    schools = [admin_school(session, principal, school_id)] if school_id is not None \
        else schools_in_scope(session, principal)
    year = year if year is not None else school_year_of(today or district_today(schools), ruleset)
    first, last = school_year_bounds(year, ruleset)
    return schools, year, first, last


def drills_for(session: Session, principal: Principal, ruleset: RuleSet, *, school_id: int | None,
               year: int | None = None, today: date | None = None) -> dict:
    """The drill log (system and hand-entered) of one school or every school in scope, for a school year."""
    schools, year, first, last = year_scope(session, principal, ruleset, school_id=school_id, year=year, today=today)
    drills = drill_log(session, schools, first, last)
    return {"year": year, "school_year": {"start": first.isoformat(), "end": last.isoformat()},
            "drills": [drill.view() for drill in drills]}


# --- drills entered by hand ------------------------------------------------------------------

@dataclass
class ManualDrillRequest:
    school_id: int
    category: str
    held_at: datetime
    duration_seconds: int | None = None
    secondary_exit: bool = False
    summer: bool = False
    parents_notified_on: date | None = None
    note: str | None = None


def record_manual_drill(session: Session, principal: Principal, request: ManualDrillRequest) -> LoggedDrill:
    """Enter a drill held without the system (on paper); it counts like any other, marked manual."""
    school = get_school(session, principal, request.school_id)
    if principal.is_partner or not principal.is_admin_of(school.id):
        raise Forbidden("Only the school's admins and district admins can record drills.")
    if request.category not in CATEGORIES:
        raise ValidationFailed(f"Unknown drill category '{request.category}'.",
                               errors={"category": [f"allowed: {', '.join(CATEGORIES)}"]})
    held_at = request.held_at.astimezone(UTC)
    if held_at > utcnow() + FUTURE_TOLERANCE:
        raise ValidationFailed("A drill can only be recorded once it has been held.",
                               errors={"held_at": ["in the future"]})
    duplicate = _duplicate_of(session, school, request.category, held_at)
    if duplicate is not None:
        raise Conflict(f"A {request.category} drill at {school.name} is already recorded at "
                       f"{duplicate.record.held_at.strftime('%Y-%m-%d %H:%M')}; it would be counted twice.",
                       extra={"run_id": duplicate.run.id if duplicate.run else None,
                              "manual_drill_id": duplicate.manual_drill.id if duplicate.manual_drill else None})
    manual = ManualDrill(
        school_id=school.id, school=school, category=request.category, held_at=held_at,
        duration_seconds=request.duration_seconds, secondary_exit=request.secondary_exit, summer=request.summer,
        parents_notified_on=request.parents_notified_on, note=request.note, entered_by=principal.actor(),
        entered_by_person_id=principal.id if principal.kind == "person" else None, entered_at=utcnow(),
    )
    session.add(manual)
    session.flush()
    log.info("manual drill %s recorded for school %s by %s", manual.id, school.code, principal.account_id)
    return drill_of_manual(manual, school)


def _duplicate_of(session: Session, school: School, category: str, held_at: datetime) -> LoggedDrill | None:
    day = held_at.astimezone(zone_of(school)).date()
    for drill in drill_log(session, [school], day - timedelta(days=1), day + timedelta(days=1)):
        if drill.record.category == category and abs(drill.record.held_at - held_at) < DUPLICATE_WINDOW:
            return drill
    return None
