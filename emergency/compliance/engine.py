"""Apply a rule set to one school's drill records: which requirements are met, on track or behind.

Pure functions over plain records, so the same code serves the compliance report, the
dashboard and the tests. How statuses are computed is documented in docs/compliance.md.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from emergency.compliance.rules import (
    CATEGORIES,
    DISTINCT_PERIODS,
    EARLY_DISMISSAL,
    SUMMER,
    Rule,
    RuleSet,
    date_in_school_year,
    school_year_bounds,
)

MET = "met"
ON_TRACK = "on_track"
BEHIND = "behind"
NOT_APPLICABLE = "not_applicable"
STATUSES = (MET, ON_TRACK, BEHIND, NOT_APPLICABLE)

# Worst first: the overall status of a school is the worst status among its applicable rules.
_SEVERITY = {BEHIND: 3, ON_TRACK: 2, MET: 1, NOT_APPLICABLE: 0}

_CATEGORY_WORDS = {
    "evacuation": "evacuation",
    "evacuation_secondary": "evacuation",
    "lockdown": "lockdown",
    "shelter": "shelter",
    "hold": "hold",
    "secure": "secure",
    "early_dismissal": "early-dismissal",
    "other": "other",
}


@dataclass(frozen=True)
class DrillRecord:
    """One drill that was held (cancelled drills are never passed in)."""

    held_at: datetime  # timezone-aware, in the school's local time zone
    category: str  # one of rules.CATEGORIES
    duration_seconds: int | None = None
    secondary_exit: bool = False
    summer: bool = False
    parents_notified_on: date | None = None
    dismissal_time: time | None = None  # the school's normal dismissal time that day (for early dismissal)
    manual: bool = False  # entered by hand after the fact

    @property
    def day(self) -> date:
        """The local date the drill was held."""
        return self.held_at.date()

    @property
    def used_secondary_exit(self) -> bool:
        """Whether the drill went out through a secondary means of egress."""
        return self.secondary_exit or self.category == "evacuation_secondary"


@dataclass(frozen=True)
class RuleResult:
    """Where one school stands on one rule."""

    rule: str  # rule id from the file, e.g. "total", "by_december_31", "evacuation", ...
    description: str
    required: int
    done: int
    remaining: int
    status: str  # "met" | "on_track" | "behind" | "not_applicable"
    next_deadline: date | None
    detail: str  # one human sentence, e.g. "7 of 8 drills by 2026-12-31; 1 more needed in 33 days"


def evaluate(
    ruleset: RuleSet,
    drills: list[DrillRecord],
    *,
    year: int,
    today: date,
    summer_session_start: date | None = None,
) -> list[RuleResult]:
    """Evaluate every rule for the school year starting in `year`, as seen on `today`."""
    first, last = school_year_bounds(year, ruleset)
    in_year = sorted(
        (drill for drill in drills if first <= drill.day <= last),
        key=lambda drill: (drill.day, drill.held_at.time()),
    )
    return [
        _evaluate_rule(rule, ruleset, in_year, year=year, today=today,
                       summer_session_start=summer_session_start)
        for rule in ruleset.rules
    ]


def summarize(results: list[RuleResult]) -> dict:
    """Overall status (the worst applicable one), how many rules have each status, and which are behind."""
    counts = Counter(result.status for result in results)
    applicable = [result.status for result in results if result.status != NOT_APPLICABLE]
    overall = max(applicable, key=_SEVERITY.__getitem__) if applicable else NOT_APPLICABLE
    return {
        "status": overall,
        "counts": {status: counts.get(status, 0) for status in STATUSES},
        "behind": [result.rule for result in results if result.status == BEHIND],
        "rules": len(results),
    }


def rule_window(rule: Rule, ruleset: RuleSet, *, year: int,
                summer_session_start: date | None = None) -> tuple[date, date] | None:
    """The first and last day on which drills count for `rule`; None when the rule does not apply."""
    first, last = school_year_bounds(year, ruleset)
    if rule.kind == SUMMER:
        if summer_session_start is None or not first <= summer_session_start <= last:
            return None
        start = summer_session_start
        end = last if rule.within_days is None else min(last, start + timedelta(days=rule.within_days - 1))
        return start, end
    start = first if rule.window_from is None else date_in_school_year(rule.window_from, year, ruleset)
    end = last if rule.window_by is None else date_in_school_year(rule.window_by, year, ruleset)
    return start, end


def _evaluate_rule(rule: Rule, ruleset: RuleSet, drills: list[DrillRecord], *, year: int, today: date,
                   summer_session_start: date | None) -> RuleResult:
    window = rule_window(rule, ruleset, year=year, summer_session_start=summer_session_start)
    if window is None:
        if summer_session_start is None:
            why = "no summer session this school year"
        else:
            why = f"summer session starts {summer_session_start.isoformat()}, outside this school year"
        return RuleResult(rule.id, rule.description, rule.required, 0, 0, NOT_APPLICABLE, None, why)
    start, end = window
    counted = [drill for drill in drills if start <= drill.day <= end and _matches(rule, drill)]

    covered: list[str] = []
    refused: list[str] = []
    if rule.kind == DISTINCT_PERIODS:
        covered, counted = _distinct_periods(rule, ruleset, counted)
        done = len(covered)
    elif rule.kind == EARLY_DISMISSAL:
        counted, refused = _early_dismissals(rule, counted)
        done = len(counted)
    else:
        done = len(counted)

    status, expected = _status(rule.required, done, start, end, today)
    remaining = max(0, rule.required - done)
    manual = sum(1 for drill in counted if drill.manual)
    detail = f"{done} of {rule.required} {_noun(rule, covered)} by {end.isoformat()}"
    if manual:
        detail += f" ({manual} entered by hand)"
    detail += "; " + _progress(status, remaining, expected, start, end, today)
    if refused:
        detail += "; not counted: " + ", ".join(refused)
    return RuleResult(
        rule=rule.id,
        description=rule.description,
        required=rule.required,
        done=done,
        remaining=remaining,
        status=status,
        next_deadline=None if status == MET else end,
        detail=detail,
    )


def _matches(rule: Rule, drill: DrillRecord) -> bool:
    if rule.categories is not None and drill.category not in rule.categories:
        return False
    if rule.secondary_exit and not drill.used_secondary_exit:
        return False
    if rule.kind == SUMMER:
        return drill.summer
    # Summer-school drills are in addition to the year's drills, unless a rule says otherwise.
    return rule.include_summer or not drill.summer


def _distinct_periods(rule: Rule, ruleset: RuleSet,
                      drills: list[DrillRecord]) -> tuple[list[str], list[DrillRecord]]:
    """The periods covered, in day order, and the drills that covered them."""
    periods = [period for period in ruleset.periods if not rule.periods or period.name in rule.periods]
    covered: list[str] = []
    counted: list[DrillRecord] = []
    for period in periods:
        inside = [drill for drill in drills if period.contains(drill.held_at.time())]
        if inside:
            covered.append(period.name)
            counted.extend(inside)
    return covered, counted


def _early_dismissals(rule: Rule, drills: list[DrillRecord]) -> tuple[list[DrillRecord], list[str]]:
    """The drills that meet the timing and notice conditions, and why each other one does not."""
    counted: list[DrillRecord] = []
    refused: list[str] = []
    for drill in drills:
        reasons = _early_dismissal_problems(rule, drill)
        if reasons:
            refused.append(f"{drill.day.isoformat()} ({', '.join(reasons)})")
        else:
            counted.append(drill)
    return counted, refused


def _early_dismissal_problems(rule: Rule, drill: DrillRecord) -> list[str]:
    reasons = []
    max_minutes = rule.max_minutes_before_dismissal or 0
    if drill.dismissal_time is None:
        reasons.append("no dismissal time recorded")
    else:
        # Compare wall-clock times on the drill's own day: dismissal is a local clock time.
        held = drill.held_at.replace(tzinfo=None)
        dismissal = datetime.combine(drill.day, drill.dismissal_time.replace(tzinfo=None))
        early = dismissal - held
        if early < timedelta(0):
            reasons.append("held after dismissal")
        elif early > timedelta(minutes=max_minutes):
            minutes = math.ceil(early.total_seconds() / 60)
            reasons.append(f"{minutes} min before dismissal, at most {max_minutes} allowed")
    min_notice = rule.min_notice_days or 0
    if drill.parents_notified_on is None:
        if min_notice:
            reasons.append("no parent notice recorded")
    else:
        notice = (drill.day - drill.parents_notified_on).days
        if notice < 0:
            reasons.append("parents notified after the drill")
        elif notice < min_notice:
            reasons.append(f"{notice} days' notice, {min_notice} needed")
    return reasons


def _status(required: int, done: int, start: date, end: date, today: date) -> tuple[str, int]:
    """The status, and how many drills the pro-rata pace expects by today.

    Pace counts whole days already gone (not today), so a school that can still hold the
    drill today is not yet behind.
    """
    if done >= required:
        return MET, required
    if today > end:
        return BEHIND, required
    elapsed = max(0, (today - start).days)
    length = (end - start).days + 1
    expected = required * elapsed // length
    return (BEHIND if done < expected else ON_TRACK), expected


def _progress(status: str, remaining: int, expected: int, start: date, end: date, today: date) -> str:
    if status == MET:
        return "met"
    if today > end:
        return f"deadline passed with {remaining} missing"
    days_left = (end - today).days
    when = "today" if days_left == 0 else f"in {days_left} day{'s' if days_left != 1 else ''}"
    need = f"{remaining} more needed {when}"
    if today < start:
        return f"{need}, counting from {start.isoformat()}"
    if status == BEHIND:
        return f"behind pace ({expected} expected by now), {need}"
    return need


def _noun(rule: Rule, covered_periods: list[str]) -> str:
    if rule.kind == DISTINCT_PERIODS:
        if covered_periods:
            return f"times of day ({', '.join(covered_periods)})"
        return "times of day"
    if rule.kind == SUMMER:
        return "summer drills"
    if rule.categories is None or rule.categories == frozenset(CATEGORIES):
        noun = "drills"
    else:
        words = sorted({_CATEGORY_WORDS.get(category, category) for category in rule.categories})
        noun = "/".join(words) + " drills"
    if rule.secondary_exit:
        noun = "secondary-egress " + noun
    return noun
