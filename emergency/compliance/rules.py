"""Drill-compliance rules read from a YAML file, and the school-year calendar they use.

The numbers a law sets (12 drills, 8 by December 31, ...) live in a rules file so that a change
in the law is a change in data. This module reads and validates that file; `engine.py` applies
it to a school's drill records. The format is described in docs/compliance.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from emergency.checking import Checker, Path_, Problem
from emergency.playbooks.model import COMPLIANCE_CATEGORIES
from emergency.yamlfile import LoadedYaml, load_file, load_text

# One list for both: what a playbook may declare is what a rule may count.
CATEGORIES = COMPLIANCE_CATEGORIES

COUNT = "count"
DISTINCT_PERIODS = "distinct_periods"
SUMMER = "summer"
EARLY_DISMISSAL = "early_dismissal"

COMMON_RULE_FIELDS = ("id", "kind", "description", "required")
# The optional fields each kind understands; anything else in a rule is an error.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    COUNT: ("categories", "from", "by", "secondary_exit", "include_summer"),
    DISTINCT_PERIODS: ("categories", "from", "by", "periods", "include_summer"),
    SUMMER: ("categories", "within_days"),
    EARLY_DISMISSAL: (
        "categories", "from", "by", "include_summer", "max_minutes_before_dismissal", "min_notice_days",
    ),
}
KIND_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    EARLY_DISMISSAL: ("max_minutes_before_dismissal", "min_notice_days"),
}
TOP_LEVEL_FIELDS = ("name", "source", "school_year_start", "periods", "rules")
PERIOD_FIELDS = ("from", "to")

MonthDay = tuple[int, int]

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Period:
    """A named part of the school day, [start, end) in minutes after local midnight."""

    name: str
    start_minute: int
    end_minute: int

    def contains(self, moment: time) -> bool:
        """Whether a local clock time falls in this period."""
        minute = moment.hour * 60 + moment.minute
        return self.start_minute <= minute < self.end_minute


@dataclass(frozen=True)
class Rule:
    """One requirement from the rules file."""

    id: str
    kind: str
    description: str
    required: int
    categories: frozenset[str] | None = None  # None: drills of every category count
    window_from: MonthDay | None = None  # None: from the first day of the school year
    window_by: MonthDay | None = None  # None: by the last day of the school year
    secondary_exit: bool = False
    include_summer: bool = False
    periods: tuple[str, ...] = ()  # distinct_periods: the periods that count; empty means all
    within_days: int | None = None
    max_minutes_before_dismissal: int | None = None
    min_notice_days: int | None = None


@dataclass(frozen=True)
class RuleSet:
    """Everything one rules file says: the school-year convention and its rules, in file order."""

    name: str
    school_year_start_month: int
    school_year_start_day: int
    rules: tuple[Rule, ...]
    periods: tuple[Period, ...] = ()
    source: str = ""
    file: str = ""

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id; KeyError if the file has none."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def school_year_bounds(year: int, ruleset: RuleSet) -> tuple[date, date]:
    """First and last day of the school year that starts in `year` (2026 -> 2026-07-01..2027-06-30)."""
    start = date(year, ruleset.school_year_start_month, ruleset.school_year_start_day)
    end = date(year + 1, ruleset.school_year_start_month, ruleset.school_year_start_day) - timedelta(days=1)
    return start, end


def school_year_of(day: date, ruleset: RuleSet) -> int:
    """The year in which the school year containing `day` starts."""
    if (day.month, day.day) >= (ruleset.school_year_start_month, ruleset.school_year_start_day):
        return day.year
    return day.year - 1


def date_in_school_year(month_day: MonthDay, year: int, ruleset: RuleSet) -> date:
    """The date with this month and day inside the school year starting in `year`.

    February 29 falls back to February 28 in years without one, so a rule written for
    leap years still has a deadline in the others.
    """
    month, day = month_day
    start = (ruleset.school_year_start_month, ruleset.school_year_start_day)
    calendar_year = year if (month, day) >= start else year + 1
    try:
        return date(calendar_year, month, day)
    except ValueError:
        return date(calendar_year, month, day - 1)


def load_rules(path: str | Path) -> tuple[RuleSet | None, list[Problem]]:
    """Read and validate a rules file: the rule set, or None and every problem found."""
    try:
        loaded = load_file(path)
    except Exception as exc:  # noqa: BLE001 - see _unparseable
        return None, [_unparseable(str(path), exc)]
    return parse_rules(loaded)


def load_rules_text(text: str, file: str = "<string>") -> tuple[RuleSet | None, list[Problem]]:
    """Validate rules given as YAML text (what `load_rules` does, without the file)."""
    try:
        loaded = load_text(text, file)
    except Exception as exc:  # noqa: BLE001 - see _unparseable
        return None, [_unparseable(file, exc)]
    return parse_rules(loaded)


def _unparseable(file: str, exc: Exception) -> Problem:
    # yamlfile lets PyYAML's constructors raise plain exceptions of many types on malformed
    # typed scalars (`!!int x` ValueError, `!!int` alone IndexError, `2026-13-01`, a `!!set`
    # key TypeError); whatever a district writes, loading must report it, not crash.
    return Problem(file, 1, 1, "", f"YAML error: a value cannot be read ({exc})")


def parse_rules(loaded: LoadedYaml) -> tuple[RuleSet | None, list[Problem]]:
    """Validate already-parsed YAML as a rules file."""
    if loaded.problems or loaded.data is None:
        return None, list(loaded.problems) or [loaded.problem((), "the file is empty")]
    checker = _Checker(loaded)
    ruleset = checker.ruleset()
    if checker.problems:
        return None, checker.problems
    return ruleset, []


class _Checker(Checker):
    """Walks the parsed file once, collecting every problem instead of stopping at the first."""

    def __init__(self, loaded: LoadedYaml) -> None:
        super().__init__(lambda path, message: self.problems.append(loaded.problem(path, message)))
        self.loaded = loaded
        self.problems: list[Problem] = []

    def ruleset(self) -> RuleSet | None:
        data = self.mapping((), self.loaded.data, TOP_LEVEL_FIELDS)
        if data is None:
            return None
        name = self.text_field(data, (), "name", required=True)
        source = self.text_field(data, (), "source", required=False)
        year_start = self.month_day(data, (), "school_year_start", required=True)
        if year_start == (2, 29):
            self.error(("school_year_start",), "a school year cannot start on February 29")
        periods = self.periods(data.get("periods"))
        rules = self.rules(data.get("rules"), {period.name for period in periods}, year_start)
        if name is None or year_start is None or rules is None:
            return None
        return RuleSet(
            name=name,
            school_year_start_month=year_start[0],
            school_year_start_day=year_start[1],
            rules=tuple(rules),
            periods=tuple(periods),
            source=source or "",
            file=self.loaded.file,
        )

    def periods(self, raw: Any) -> list[Period]:
        path: Path_ = ("periods",)
        if raw is None:
            return []
        if not isinstance(raw, dict) or not raw:
            self.error(path, "must be a mapping of period names to {from, to} clock times")
            return []
        periods = []
        for name, spec in raw.items():
            period_path = path + (name,)
            if not isinstance(name, str) or not _RULE_ID.match(name):
                self.error(period_path, f"period name '{name}' must be lowercase letters, digits and _")
                continue
            if self.mapping(period_path, spec, PERIOD_FIELDS, expected="a mapping with 'from' and 'to'") is None:
                continue
            start = self.clock(spec, period_path, "from")
            end = self.clock(spec, period_path, "to")
            if start is None or end is None:
                continue
            if start >= end:
                self.error(period_path + ("to",), f"'to' must be after 'from' ({_clock_text(start)})")
                continue
            periods.append(Period(name, start, end))
        for index, period in enumerate(periods):
            for earlier in periods[:index]:
                if period.start_minute < earlier.end_minute and earlier.start_minute < period.end_minute:
                    self.error(path + (period.name, "from"), f"overlaps period '{earlier.name}'")
        return periods

    def rules(self, raw: Any, period_names: set[str], year_start: MonthDay | None) -> list[Rule] | None:
        path: Path_ = ("rules",)
        if raw is None:
            self.error(path, "required field is missing")
            return None
        if not isinstance(raw, list) or not raw:
            self.error(path, "must be a non-empty list of rules")
            return None
        rules = []
        seen: set[str] = set()
        for index, spec in enumerate(raw):
            rule = self.rule(spec, path + (index,), period_names, year_start)
            if rule is None:
                continue
            if rule.id in seen:
                self.error(path + (index, "id"), f"duplicate rule id '{rule.id}'")
                continue
            seen.add(rule.id)
            rules.append(rule)
        return rules

    def rule(self, spec: Any, path: Path_, period_names: set[str],
             year_start: MonthDay | None) -> Rule | None:
        if not isinstance(spec, dict):
            self.wrong(path, "a mapping (a rule)", spec)
            return None
        rule_id = self.text_field(spec, path, "id", required=True)
        if rule_id is not None and not _RULE_ID.match(rule_id):
            self.error(path + ("id",), f"rule id '{rule_id}' must be lowercase letters, digits and _")
            rule_id = None
        kind = self.text_field(spec, path, "kind", required=True)
        if kind is not None:
            kind = self.choice(path + ("kind",), kind, KIND_FIELDS, "rule kind")
        description = self.text_field(spec, path, "description", required=True)
        required = self.count(spec, path, "required", required=True)
        if kind is None:
            return None

        def misplaced(key: str) -> str | None:
            if any(key in fields for fields in KIND_FIELDS.values()):
                return f"field '{key}' does not apply to kind '{kind}'"
            return None

        self.fields(path, spec, COMMON_RULE_FIELDS + KIND_FIELDS[kind], misplaced=misplaced)
        for name in KIND_REQUIRED_FIELDS.get(kind, ()):
            if name not in spec:
                self.error(path + (name,), f"required field for kind '{kind}' is missing")
        categories = self.categories(spec, path)
        if categories is None and kind == EARLY_DISMISSAL:
            categories = frozenset({EARLY_DISMISSAL})
        window_from = self.month_day(spec, path, "from", required=False)
        window_by = self.month_day(spec, path, "by", required=False)
        if window_from and window_by and year_start and year_start != (2, 29):
            def order(md: MonthDay) -> tuple[bool, MonthDay]:
                return (md < year_start, md)

            if order(window_from) > order(window_by):
                self.error(path + ("by",), "'by' comes before 'from' in the school year")
        periods = self.period_refs(spec, path, period_names)
        if kind == DISTINCT_PERIODS:
            available = len(periods) if periods else len(period_names)
            if not period_names:
                self.error(path, "kind 'distinct_periods' needs 'periods' defined at the top of the file")
            elif required is not None and required > available:
                self.error(path + ("required",), f"asks for {required} distinct periods but only "
                                                 f"{available} are defined")
        within_days = self.count(spec, path, "within_days", required=False, minimum=1)
        max_minutes = self.count(spec, path, "max_minutes_before_dismissal", required=False)
        notice_days = self.count(spec, path, "min_notice_days", required=False)
        secondary_exit = self.flag(spec, path, "secondary_exit")
        include_summer = self.flag(spec, path, "include_summer")
        if rule_id is None or description is None or required is None:
            return None
        return Rule(
            id=rule_id,
            kind=kind,
            description=description,
            required=required,
            categories=categories,
            window_from=window_from,
            window_by=window_by,
            secondary_exit=secondary_exit,
            include_summer=include_summer,
            periods=periods,
            within_days=within_days,
            max_minutes_before_dismissal=max_minutes,
            min_notice_days=notice_days,
        )

    # Field readers: each returns None (after recording a problem) when the value is unusable.

    def present(self, spec: dict, path: Path_, name: str, *, required: bool) -> bool:
        """Whether `name` is in `spec`; a missing required field is a problem."""
        if name in spec:
            return True
        if required:
            self.error(path + (name,), "required field is missing")
        return False

    def text_field(self, spec: dict, path: Path_, name: str, *, required: bool) -> str | None:
        return self.text(path + (name,), spec[name]) if self.present(spec, path, name, required=required) else None

    def count(self, spec: dict, path: Path_, name: str, *, required: bool, minimum: int = 0) -> int | None:
        if not self.present(spec, path, name, required=required):
            return None
        return self.integer(path + (name,), spec[name], minimum)

    def flag(self, spec: dict, path: Path_, name: str) -> bool:
        if name not in spec:
            return False
        return bool(self.boolean(path + (name,), spec[name]))

    def month_day(self, spec: dict, path: Path_, name: str, *, required: bool) -> MonthDay | None:
        if not self.present(spec, path, name, required=required):
            return None
        value = spec[name]
        if isinstance(value, date):
            self.error(path + (name,), f'must be a month and day like "{value:%m-%d}", not a full date')
            return None
        match = _MONTH_DAY.match(value) if isinstance(value, str) else None
        if match is None:
            self.wrong(path + (name,), 'a month and day like "07-01"', value)
            return None
        month, day = int(match[1]), int(match[2])
        try:
            date(2000, month, day)  # a leap year, so February 29 is accepted
        except ValueError:
            self.error(path + (name,), f"'{value}' is not a valid month and day")
            return None
        return month, day

    def clock(self, spec: dict, path: Path_, name: str) -> int | None:
        if not self.present(spec, path, name, required=True):
            return None
        value = spec[name]
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 12:30 as the base-60 number 750.
            if 0 <= value <= _MINUTES_PER_DAY:
                self.error(path + (name,), f'put clock times in quotes, like "{_clock_text(value)}"')
            else:
                self.wrong(path + (name,), 'a clock time like "08:00"', value)
            return None
        match = _CLOCK.match(value) if isinstance(value, str) else None
        if match is None:
            self.wrong(path + (name,), 'a clock time like "08:00"', value)
            return None
        hour, minute = int(match[1]), int(match[2])
        if minute > 59 or hour > 24 or (hour == 24 and minute):
            self.error(path + (name,), f"'{value}' is not a valid clock time (00:00 to 24:00)")
            return None
        return hour * 60 + minute

    def categories(self, spec: dict, path: Path_) -> frozenset[str] | None:
        if "categories" not in spec:
            return None
        value = spec["categories"]
        if not isinstance(value, list) or not value:
            self.wrong(path + ("categories",), "a non-empty list of categories", value)
            return None
        # A category named twice is harmless here: they form a set.
        known = [self.choice(path + ("categories", index), category, CATEGORIES, "category")
                 for index, category in enumerate(value)]
        return None if None in known else frozenset(known)

    def period_refs(self, spec: dict, path: Path_, period_names: set[str]) -> tuple[str, ...]:
        if "periods" not in spec:
            return ()
        checked = self.choice_list(path + ("periods",), spec["periods"], sorted(period_names), "period",
                                   expected="a non-empty list of period names")
        return checked or ()


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
