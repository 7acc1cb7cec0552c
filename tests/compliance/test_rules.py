"""The rules file: the shipped New York rules, every validation error with its position, robustness."""

from datetime import date
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emergency.compliance.rules import (
    CATEGORIES,
    KIND_FIELDS,
    RuleSet,
    load_rules,
    load_rules_text,
    school_year_bounds,
    school_year_of,
)

NEW_YORK = Path(__file__).resolve().parents[2] / "rules" / "new-york.yaml"

BASE = """\
name: Test district
school_year_start: "07-01"
periods:
  morning: {from: "00:00", to: "12:00"}
  afternoon: {from: "12:00", to: "24:00"}
rules:
  - id: total
    kind: count
    description: All drills
    required: 12
"""


def problems_of(text: str) -> list[str]:
    ruleset, problems = load_rules_text(text, "r.yaml")
    assert (ruleset is None) == bool(problems)
    return [str(problem) for problem in problems]


# The shipped New York file


def test_new_york_rules_load_without_problems():
    ruleset, problems = load_rules(NEW_YORK)
    assert problems == []
    assert ruleset is not None
    assert (ruleset.school_year_start_month, ruleset.school_year_start_day) == (7, 1)
    assert [rule.id for rule in ruleset.rules] == [
        "total", "by_december_31", "evacuation", "evacuation_secondary", "lockdown",
        "times_of_day", "summer", "summer_first_week", "early_dismissal",
    ]


def test_new_york_rules_carry_the_numbers_the_law_sets():
    ruleset, _ = load_rules(NEW_YORK)
    required = {rule.id: rule.required for rule in ruleset.rules}
    assert required == {
        "total": 12, "by_december_31": 8, "evacuation": 8, "evacuation_secondary": 4, "lockdown": 4,
        "times_of_day": 3, "summer": 2, "summer_first_week": 1, "early_dismissal": 1,
    }
    assert ruleset.rule("by_december_31").window_by == (12, 31)
    assert ruleset.rule("evacuation").categories == {"evacuation", "evacuation_secondary"}
    assert ruleset.rule("evacuation_secondary").secondary_exit is True
    assert ruleset.rule("summer_first_week").within_days == 7
    early = ruleset.rule("early_dismissal")
    assert (early.max_minutes_before_dismissal, early.min_notice_days) == (15, 7)
    assert early.categories == {"early_dismissal"}
    assert [period.name for period in ruleset.periods] == ["morning", "midday", "afternoon"]


def test_minimal_file_loads():
    ruleset, problems = load_rules_text(BASE, "r.yaml")
    assert problems == []
    assert isinstance(ruleset, RuleSet)
    assert ruleset.name == "Test district"
    assert ruleset.file == "r.yaml"


# The school-year convention


def test_school_year_is_named_by_the_year_it_starts():
    ruleset, _ = load_rules(NEW_YORK)
    assert school_year_bounds(2026, ruleset) == (date(2026, 7, 1), date(2027, 6, 30))
    assert school_year_of(date(2027, 6, 30), ruleset) == 2026
    assert school_year_of(date(2027, 7, 1), ruleset) == 2027
    assert school_year_of(date(2026, 12, 31), ruleset) == 2026
    assert school_year_of(date(2027, 1, 1), ruleset) == 2026


def test_school_year_start_comes_from_the_file():
    ruleset, _ = load_rules_text(BASE.replace('"07-01"', '"09-01"'))
    assert school_year_bounds(2026, ruleset) == (date(2026, 9, 1), date(2027, 8, 31))
    assert school_year_of(date(2026, 8, 31), ruleset) == 2025
    assert school_year_of(date(2026, 9, 1), ruleset) == 2026


# Every class of error, with its exact position


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            BASE + "colour: red\n",
            "r.yaml:11:9: colour: unknown field 'colour' "
            "(allowed: name, source, school_year_start, periods, rules)",
            id="unknown-top-level-field",
        ),
        pytest.param(
            BASE + "    colour: red\n",
            "r.yaml:11:13: rules[0].colour: unknown field 'colour' (allowed: id, kind, description, "
            "required, categories, from, by, secondary_exit, include_summer)",
            id="unknown-rule-field",
        ),
        pytest.param(
            BASE + "    within_days: 3\n",
            "r.yaml:11:18: rules[0].within_days: field 'within_days' does not apply to kind 'count'",
            id="field-of-another-kind",
        ),
        pytest.param(
            BASE.replace('to: "12:00"}', 'to: "12:00", colour: red}'),
            "r.yaml:4:49: periods.morning.colour: unknown field 'colour' (allowed: from, to)",
            id="unknown-period-field",
        ),
        pytest.param(
            BASE.replace("required: 12", "required: twelve"),
            "r.yaml:10:15: rules[0].required: must be a whole number, got the text 'twelve'",
            id="wrong-type-text-for-number",
        ),
        pytest.param(
            BASE.replace("required: 12", "required: yes"),
            "r.yaml:10:15: rules[0].required: must be a whole number, got the boolean true",
            id="wrong-type-boolean-for-number",
        ),
        pytest.param(
            BASE.replace("name: Test district", "name: [a, b]"),
            "r.yaml:1:7: name: must be text, got a list",
            id="wrong-type-list-for-text",
        ),
        pytest.param(
            BASE + "    include_summer: sometimes\n",
            "r.yaml:11:21: rules[0].include_summer: must be true or false, got the text 'sometimes'",
            id="wrong-type-text-for-boolean",
        ),
        pytest.param(
            BASE.replace("rules:\n", "rules: none\n").split("  - id")[0],
            "r.yaml:6:8: rules: must be a non-empty list of rules",
            id="wrong-type-rules-not-a-list",
        ),
        pytest.param(
            BASE.replace("required: 12", "required: -1"),
            "r.yaml:10:15: rules[0].required: must not be negative (got -1)",
            id="negative-number",
        ),
        pytest.param(
            BASE.replace("kind: count\n", "kind: summer\n") + "    within_days: 0\n",
            "r.yaml:11:18: rules[0].within_days: must not be less than 1 (got 0)",
            id="zero-days",
        ),
        pytest.param(
            BASE.replace("kind: count", "kind: tally"),
            "r.yaml:8:11: rules[0].kind: unknown rule kind 'tally' "
            "(expected one of: count, distinct_periods, summer, early_dismissal)",
            id="unknown-kind",
        ),
        pytest.param(
            BASE + "    categories: [lockdown, fire]\n",
            "r.yaml:11:28: rules[0].categories[1]: unknown category 'fire' (expected one of: evacuation, "
            "evacuation_secondary, lockdown, shelter, hold, secure, early_dismissal, other)",
            id="unknown-category",
        ),
        pytest.param(
            BASE.replace('"07-01"', '"13-01"'),
            "r.yaml:2:20: school_year_start: '13-01' is not a valid month and day",
            id="bad-month",
        ),
        pytest.param(
            BASE + '    by: "02-30"\n',
            "r.yaml:11:9: rules[0].by: '02-30' is not a valid month and day",
            id="bad-day",
        ),
        pytest.param(
            BASE + '    from: "9-1"\n',
            'r.yaml:11:11: rules[0].from: must be a month and day like "07-01", got the text \'9-1\'',
            id="date-not-mm-dd",
        ),
        pytest.param(
            BASE.replace('"07-01"', "2026-07-01"),
            'r.yaml:2:20: school_year_start: must be a month and day like "07-01", not a full date',
            id="full-date-instead-of-month-day",
        ),
        pytest.param(
            BASE.replace('"07-01"', '"02-29"'),
            "r.yaml:2:20: school_year_start: a school year cannot start on February 29",
            id="school-year-on-leap-day",
        ),
        pytest.param(
            BASE + '    from: "12-31"\n    by: "09-01"\n',
            "r.yaml:12:9: rules[0].by: 'by' comes before 'from' in the school year",
            id="window-backwards",
        ),
        pytest.param(
            BASE.replace('{from: "12:00", to: "24:00"}', '{from: 12:00, to: "24:00"}'),
            'r.yaml:5:21: periods.afternoon.from: put clock times in quotes, like "12:00"',
            id="unquoted-clock-time",
        ),
        pytest.param(
            BASE.replace('to: "24:00"', 'to: "25:00"'),
            "r.yaml:5:34: periods.afternoon.to: '25:00' is not a valid clock time (00:00 to 24:00)",
            id="bad-clock-time",
        ),
        pytest.param(
            BASE.replace('to: "12:00"', 'to: "13:00"'),
            "r.yaml:5:21: periods.afternoon.from: overlaps period 'morning'",
            id="overlapping-periods",
        ),
        pytest.param(
            BASE.replace('{from: "12:00", to: "24:00"}', '{from: "12:00", to: "12:00"}'),
            "r.yaml:5:34: periods.afternoon.to: 'to' must be after 'from' (12:00)",
            id="empty-period",
        ),
        pytest.param(
            BASE.replace("    description: All drills\n", ""),
            "r.yaml:7:5: rules[0].description: required field is missing",
            id="missing-field",
        ),
        pytest.param(
            BASE.replace("name: Test district\n", ""),
            "r.yaml:1:1: name: required field is missing",
            id="missing-top-level-field",
        ),
        pytest.param(
            BASE + "  - id: total\n    kind: count\n    description: Again\n    required: 1\n",
            "r.yaml:11:9: rules[1].id: duplicate rule id 'total'",
            id="duplicate-rule-id",
        ),
        pytest.param(
            BASE.replace("id: total", "id: Total Drills"),
            "r.yaml:7:9: rules[0].id: rule id 'Total Drills' must be lowercase letters, digits and _",
            id="bad-rule-id",
        ),
        pytest.param(
            BASE + "    required: 3\n",
            "r.yaml:11:5: rules[0].required: duplicate key 'required'",
            id="duplicate-key",
        ),
        pytest.param(
            BASE + "  - id: times\n    kind: distinct_periods\n    description: x\n    required: 3\n",
            "r.yaml:14:15: rules[1].required: asks for 3 distinct periods but only 2 are defined",
            id="more-periods-than-defined",
        ),
        pytest.param(
            BASE + "  - id: times\n    kind: distinct_periods\n    description: x\n    required: 1\n"
            "    periods: [morning, evening]\n",
            "r.yaml:15:24: rules[1].periods[1]: unknown period 'evening' (expected one of: afternoon, morning)",
            id="unknown-period",
        ),
        pytest.param(
            BASE + "  - id: e\n    kind: early_dismissal\n    description: x\n    required: 1\n"
            "    min_notice_days: 7\n",
            "r.yaml:11:5: rules[1].max_minutes_before_dismissal: required field for kind 'early_dismissal' "
            "is missing",
            id="missing-kind-field",
        ),
        pytest.param(
            BASE + "  - id: [\n",
            "r.yaml:12:1: YAML syntax error: expected the node content, but found '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param("- total\n", "r.yaml:1:1: must be a mapping of fields, got a list",
                     id="not-a-mapping"),
        pytest.param("", "r.yaml:1:1: the file is empty", id="empty-file"),
    ],
)
def test_each_error_names_file_line_and_column(text, expected):
    assert problems_of(text) == [expected]


def test_all_problems_are_reported_at_once():
    text = BASE.replace("required: 12", "required: -3").replace("kind: count", "kind: count\n    colour: red")
    assert problems_of(text) == [
        "r.yaml:11:15: rules[0].required: must not be negative (got -3)",
        "r.yaml:9:13: rules[0].colour: unknown field 'colour' (allowed: id, kind, description, "
        "required, categories, from, by, secondary_exit, include_summer)",
    ]


def test_typed_scalars_that_yaml_cannot_build_are_problems():
    assert problems_of("name: !!int x\n") == [
        "r.yaml:1:7: name: cannot read this value (invalid literal for int() with base 10: 'x')",
    ]
    assert problems_of("effective: 2026-13-01\n") == [
        "r.yaml:1:12: effective: cannot read this value (month must be in 1..12)",
    ]


def test_missing_file_is_a_problem(tmp_path):
    ruleset, problems = load_rules(tmp_path / "nope.yaml")
    assert ruleset is None
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{tmp_path / 'nope.yaml'}:1:1: cannot read file")


def test_load_rules_reads_a_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(BASE.replace("required: 12", "required: -1"), encoding="utf-8")
    _, problems = load_rules(path)
    assert [str(problem) for problem in problems] == [
        f"{path}:10:15: rules[0].required: must not be negative (got -1)",
    ]


# Arbitrary input never raises

_FRAGMENTS = [
    "name: x\n", "rules:\n", "  - ", "id: a\n", "kind: count\n", "kind: summer\n", "required: 3\n",
    "required: -1\n", "categories: [", "lockdown", "]", "{", "}", ": ", "? ", "!!set ", "!!int ", "!!float ",
    "!!timestamp ", "!!binary ", "!!str ", "&a ", "*a ", "<<: ", "2026-13-01", "12:30", "07-01", '"07-01"',
    "periods:\n", "  morning: ", "from: ", "null", "~", "yes", "1e9", ".nan", "\n", "  ", "- ", "'", '"',
    "#", "---\n", "...\n", "school_year_start: ", "within_days: ", "by: ",
]
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
    st.text(max_size=12), st.dates(), st.sampled_from(CATEGORIES),
)
_KEYS = st.sampled_from(
    sorted({"name", "source", "school_year_start", "periods", "rules", "from", "to", "morning",
            *(field for fields in KIND_FIELDS.values() for field in fields),
            "id", "kind", "description", "required"})
) | st.text(max_size=8)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=20,
)


def _assert_never_raises(text: str) -> None:
    ruleset, problems = load_rules_text(text, "fuzz.yaml")
    assert (ruleset is None) == bool(problems)
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200) | st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join))
def test_arbitrary_yaml_text_never_raises(text):
    _assert_never_raises(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES)
def test_arbitrary_yaml_documents_never_raise(document):
    _assert_never_raises(yaml.safe_dump(document))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_new_york_file_with_any_field_changed_never_raises(data):
    document = yaml.safe_load(NEW_YORK.read_text(encoding="utf-8"))
    rule = data.draw(st.sampled_from(document["rules"]))
    field = data.draw(_KEYS)
    rule[field] = data.draw(_VALUES)
    _assert_never_raises(yaml.safe_dump(document))
