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

from emergency.playbooks.model import COMPLIANCE_CATEGORIES
from emergency.yamlfile import LoadedYaml, Path_, Problem, load_file, load_text

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


class _Checker:
    """Walks the parsed file once, collecting every problem instead of stopping at the first."""

    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.problems: list[Problem] = []

    def fail(self, path: Path_, message: str) -> None:
        self.problems.append(self.loaded.problem(path, message))

    def ruleset(self) -> RuleSet | None:
        data = self.loaded.data
        if not isinstance(data, dict):
            self.fail((), f"the file must be a mapping of fields, not {_kind_of(data)}")
            return None
        self.unknown_fields(data, (), TOP_LEVEL_FIELDS)
        name = self.text(data, (), "name", required=True)
        source = self.text(data, (), "source", required=False)
        year_start = self.month_day(data, (), "school_year_start", required=True)
        if year_start == (2, 29):
            self.fail(("school_year_start",), "a school year cannot start on February 29")
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
            self.fail(path, "must be a mapping of period names to {from, to} clock times")
            return []
        periods = []
        for name, spec in raw.items():
            period_path = path + (name,)
            if not isinstance(name, str) or not _RULE_ID.match(name):
                self.fail(period_path, f"period name '{name}' must be lowercase letters, digits and _")
                continue
            if not isinstance(spec, dict):
                self.fail(period_path, f"must be a mapping with 'from' and 'to', not {_kind_of(spec)}")
                continue
            self.unknown_fields(spec, period_path, PERIOD_FIELDS)
            start = self.clock(spec, period_path, "from")
            end = self.clock(spec, period_path, "to")
            if start is None or end is None:
                continue
            if start >= end:
                self.fail(period_path + ("to",), f"'to' must be after 'from' ({_clock_text(start)})")
                continue
            periods.append(Period(name, start, end))
        for index, period in enumerate(periods):
            for earlier in periods[:index]:
                if period.start_minute < earlier.end_minute and earlier.start_minute < period.end_minute:
                    self.fail(path + (period.name, "from"), f"overlaps period '{earlier.name}'")
        return periods

    def rules(self, raw: Any, period_names: set[str], year_start: MonthDay | None) -> list[Rule] | None:
        path: Path_ = ("rules",)
        if raw is None:
            self.fail((), "missing required field 'rules'")
            return None
        if not isinstance(raw, list) or not raw:
            self.fail(path, "must be a non-empty list of rules")
            return None
        rules = []
        seen: set[str] = set()
        for index, spec in enumerate(raw):
            rule = self.rule(spec, path + (index,), period_names, year_start)
            if rule is None:
                continue
            if rule.id in seen:
                self.fail(path + (index, "id"), f"duplicate rule id '{rule.id}'")
                continue
            seen.add(rule.id)
            rules.append(rule)
        return rules

    def rule(self, spec: Any, path: Path_, period_names: set[str],
             year_start: MonthDay | None) -> Rule | None:
        if not isinstance(spec, dict):
            self.fail(path, f"a rule must be a mapping, not {_kind_of(spec)}")
            return None
        rule_id = self.text(spec, path, "id", required=True)
        if rule_id is not None and not _RULE_ID.match(rule_id):
            self.fail(path + ("id",), f"rule id '{rule_id}' must be lowercase letters, digits and _")
            rule_id = None
        kind = self.text(spec, path, "kind", required=True)
        if kind is not None and kind not in KIND_FIELDS:
            self.fail(path + ("kind",), f"unknown rule kind '{kind}' (known: {', '.join(KIND_FIELDS)})")
            kind = None
        description = self.text(spec, path, "description", required=True)
        required = self.count(spec, path, "required", required=True)
        if kind is None:
            return None
        self.unknown_fields(spec, path, COMMON_RULE_FIELDS + KIND_FIELDS[kind], kind=kind)
        for name in KIND_REQUIRED_FIELDS.get(kind, ()):
            if name not in spec:
                self.fail(path, f"missing required field '{name}' for kind '{kind}'")
        categories = self.categories(spec, path)
        if categories is None and kind == EARLY_DISMISSAL:
            categories = frozenset({EARLY_DISMISSAL})
        window_from = self.month_day(spec, path, "from", required=False)
        window_by = self.month_day(spec, path, "by", required=False)
        if window_from and window_by and year_start and year_start != (2, 29):
            def order(md: MonthDay) -> tuple[bool, MonthDay]:
                return (md < year_start, md)

            if order(window_from) > order(window_by):
                self.fail(path + ("by",), "'by' comes before 'from' in the school year")
        periods = self.period_refs(spec, path, period_names)
        if kind == DISTINCT_PERIODS:
            available = len(periods) if periods else len(period_names)
            if not period_names:
                self.fail(path, "kind 'distinct_periods' needs 'periods' defined at the top of the file")
            elif required is not None and required > available:
                self.fail(path + ("required",), f"asks for {required} distinct periods but only "
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

    def unknown_fields(self, spec: dict, path: Path_, allowed: tuple[str, ...],
                       kind: str | None = None) -> None:
        for key in spec:
            if key in allowed:
                continue
            if kind is not None and any(key in fields for fields in KIND_FIELDS.values()):
                self.fail(path + (key,), f"field '{key}' does not apply to kind '{kind}'")
            else:
                self.fail(path + (key,), f"unknown field '{key}' (allowed: {', '.join(allowed)})")

    def text(self, spec: dict, path: Path_, name: str, *, required: bool) -> str | None:
        if name not in spec:
            if required:
                self.fail(path, f"missing required field '{name}'")
            return None
        value = spec[name]
        if not isinstance(value, str) or not value.strip():
            self.fail(path + (name,), f"must be a non-empty text, not {_kind_of(value)}")
            return None
        return value.strip()

    def count(self, spec: dict, path: Path_, name: str, *, required: bool, minimum: int = 0) -> int | None:
        if name not in spec:
            if required:
                self.fail(path, f"missing required field '{name}'")
            return None
        value = spec[name]
        # bool is an int in Python; `required: yes` is a mistake, not the number 1.
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(path + (name,), f"must be a whole number, not {_kind_of(value)}")
            return None
        if value < minimum:
            what = "negative" if value < 0 else f"less than {minimum}"
            self.fail(path + (name,), f"must not be {what} (got {value})")
            return None
        return value

    def flag(self, spec: dict, path: Path_, name: str) -> bool:
        value = spec.get(name, False)
        if not isinstance(value, bool):
            self.fail(path + (name,), f"must be true or false, not {_kind_of(value)}")
            return False
        return value

    def month_day(self, spec: dict, path: Path_, name: str, *, required: bool) -> MonthDay | None:
        if name not in spec:
            if required:
                self.fail(path, f"missing required field '{name}'")
            return None
        value = spec[name]
        if isinstance(value, date):
            self.fail(path + (name,), f'must be a month and day like "{value:%m-%d}", not a full date')
            return None
        match = _MONTH_DAY.match(value) if isinstance(value, str) else None
        if match is None:
            self.fail(path + (name,), f'must be a month and day like "07-01", not {_kind_of(value)}')
            return None
        month, day = int(match[1]), int(match[2])
        try:
            date(2000, month, day)  # a leap year, so February 29 is accepted
        except ValueError:
            self.fail(path + (name,), f"'{value}' is not a valid month and day")
            return None
        return month, day

    def clock(self, spec: dict, path: Path_, name: str) -> int | None:
        if name not in spec:
            self.fail(path, f"missing required field '{name}'")
            return None
        value = spec[name]
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 12:30 as the base-60 number 750.
            if 0 <= value <= _MINUTES_PER_DAY:
                self.fail(path + (name,), f'put clock times in quotes, like "{_clock_text(value)}"')
            else:
                self.fail(path + (name,), f'must be a clock time like "08:00", not the number {value}')
            return None
        match = _CLOCK.match(value) if isinstance(value, str) else None
        if match is None:
            self.fail(path + (name,), f'must be a clock time like "08:00", not {_kind_of(value)}')
            return None
        hour, minute = int(match[1]), int(match[2])
        if minute > 59 or hour > 24 or (hour == 24 and minute):
            self.fail(path + (name,), f"'{value}' is not a valid clock time (00:00 to 24:00)")
            return None
        return hour * 60 + minute

    def categories(self, spec: dict, path: Path_) -> frozenset[str] | None:
        if "categories" not in spec:
            return None
        value = spec["categories"]
        if not isinstance(value, list) or not value:
            self.fail(path + ("categories",),
                      f"must be a non-empty list of categories, not {_kind_of(value)}")
            return None
        known = []
        for index, category in enumerate(value):
            if category not in CATEGORIES:
                self.fail(path + ("categories", index),
                          f"unknown category '{category}' (known: {', '.join(CATEGORIES)})")
            else:
                known.append(category)
        return frozenset(known) if len(known) == len(value) else None

    def period_refs(self, spec: dict, path: Path_, period_names: set[str]) -> tuple[str, ...]:
        if "periods" not in spec:
            return ()
        value = spec["periods"]
        if not isinstance(value, list) or not value:
            self.fail(path + ("periods",), f"must be a non-empty list of period names, not {_kind_of(value)}")
            return ()
        names = []
        for index, name in enumerate(value):
            if not isinstance(name, str) or name not in period_names:
                self.fail(path + ("periods", index), f"unknown period '{name}'")
            elif name in names:
                self.fail(path + ("periods", index), f"period '{name}' is listed twice")
            else:
                names.append(name)
        return tuple(names)


def _kind_of(value: Any) -> str:
    """How a wrong value reads in a message: its YAML type, and the value when it is short."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'" if len(value) <= 40 else "a long text"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
