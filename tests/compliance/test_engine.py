"""The rules engine on hand-worked examples, against the shipped New York rules."""

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from emergency.compliance.engine import DrillRecord, RuleResult, evaluate, summarize
from emergency.compliance.rules import load_rules, load_rules_text

NEW_YORK_FILE = Path(__file__).resolve().parents[2] / "rules" / "new-york.yaml"
EASTERN = timezone(timedelta(hours=-5))  # a fixed offset keeps the tests free of tzdata
MAY_13 = date(2027, 5, 13)
SUMMER_START = date(2026, 7, 6)
JULY_30 = date(2026, 7, 30)


@pytest.fixture(scope="module")
def new_york():
    ruleset, problems = load_rules(NEW_YORK_FILE)
    assert problems == []
    return ruleset


def drill(day: str, category: str = "lockdown", at: str = "10:00", **fields) -> DrillRecord:
    hour, minute = map(int, at.split(":"))
    held_at = datetime.combine(date.fromisoformat(day), time(hour, minute), tzinfo=EASTERN)
    return DrillRecord(held_at=held_at, category=category, **fields)


def result(results: list[RuleResult], rule: str) -> RuleResult:
    return next(r for r in results if r.rule == rule)


def autumn_drills(count: int) -> list[DrillRecord]:
    """`count` drills a week apart from September 8, 2026."""
    return [drill((date(2026, 9, 8) + timedelta(weeks=week)).isoformat()) for week in range(count)]


# Eight drills between September 1 and December 31


def test_seven_drills_by_december_31_is_behind_once_the_year_turns(new_york):
    results = evaluate(new_york, autumn_drills(7), year=2026, today=date(2027, 1, 2))
    by_december = result(results, "by_december_31")
    assert (by_december.done, by_december.required, by_december.remaining) == (7, 8, 1)
    assert by_december.status == "behind"
    assert by_december.next_deadline == date(2026, 12, 31)
    assert by_december.detail == "7 of 8 drills by 2026-12-31; deadline passed with 1 missing"


def test_seven_drills_in_late_november_is_on_track(new_york):
    results = evaluate(new_york, autumn_drills(7), year=2026, today=date(2026, 11, 28))
    by_december = result(results, "by_december_31")
    assert by_december.status == "on_track"
    assert by_december.next_deadline == date(2026, 12, 31)
    assert by_december.detail == "7 of 8 drills by 2026-12-31; 1 more needed in 33 days"


def test_seven_drills_on_december_31_can_still_hold_the_eighth_today(new_york):
    by_december = result(evaluate(new_york, autumn_drills(7), year=2026, today=date(2026, 12, 31)),
                         "by_december_31")
    assert by_december.status == "on_track"
    assert by_december.detail == "7 of 8 drills by 2026-12-31; 1 more needed today"


def test_eight_drills_by_december_31_is_met(new_york):
    by_december = result(evaluate(new_york, autumn_drills(8), year=2026, today=date(2027, 1, 2)),
                         "by_december_31")
    assert by_december.status == "met"
    assert by_december.next_deadline is None
    assert by_december.detail == "8 of 8 drills by 2026-12-31; met"


def test_falling_behind_pace_is_behind_before_the_deadline(new_york):
    # December 1 is 91 of the window's 122 days in: floor(8 * 91 / 122) = 5 drills expected.
    by_december = result(evaluate(new_york, autumn_drills(4), year=2026, today=date(2026, 12, 1)),
                         "by_december_31")
    assert by_december.status == "behind"
    assert by_december.detail == (
        "4 of 8 drills by 2026-12-31; behind pace (5 expected by now), 4 more needed in 30 days"
    )
    on_pace = result(evaluate(new_york, autumn_drills(5), year=2026, today=date(2026, 12, 1)),
                     "by_december_31")
    assert on_pace.status == "on_track"


def test_summer_months_do_not_count_toward_the_autumn_rule(new_york):
    july = [drill("2026-07-15"), drill("2026-08-20")]
    results = evaluate(new_york, july, year=2026, today=date(2026, 8, 25))
    assert result(results, "by_december_31").done == 0
    assert result(results, "total").done == 2
    assert result(results, "by_december_31").detail == (
        "0 of 8 drills by 2026-12-31; 8 more needed in 128 days, counting from 2026-09-01"
    )
    assert result(results, "by_december_31").status == "on_track"


# Totals and categories


def twelve_with_three_lockdowns() -> list[DrillRecord]:
    categories = ["lockdown"] * 3 + ["evacuation"] * 4 + ["evacuation_secondary"] * 4 + ["shelter"]
    start = date(2026, 9, 8)
    return [drill((start + timedelta(weeks=week)).isoformat(), category)
            for week, category in enumerate(categories)]


def test_twelve_drills_with_three_lockdowns_meets_total_but_not_lockdown(new_york):
    results = evaluate(new_york, twelve_with_three_lockdowns(), year=2026, today=date(2027, 7, 1))
    total = result(results, "total")
    assert (total.status, total.done, total.remaining) == ("met", 12, 0)
    lockdown = result(results, "lockdown")
    assert (lockdown.status, lockdown.done, lockdown.remaining) == ("behind", 3, 1)
    assert lockdown.detail == "3 of 4 lockdown drills by 2027-06-30; deadline passed with 1 missing"


def test_three_lockdowns_in_march_is_still_on_track(new_york):
    # March 1 is 243 of 365 days in: floor(4 * 243 / 365) = 2 lockdowns expected.
    lockdown = result(evaluate(new_york, twelve_with_three_lockdowns(), year=2026, today=date(2027, 3, 1)),
                      "lockdown")
    assert lockdown.status == "on_track"
    assert lockdown.next_deadline == date(2027, 6, 30)


def test_secondary_egress_evacuations_count_for_both_evacuation_rules(new_york):
    drills = [drill(f"2026-09-{day:02d}", "evacuation_secondary") for day in (8, 9, 10)]
    drills.append(drill("2026-09-11", "evacuation", secondary_exit=True))
    drills += [drill(f"2026-10-{day:02d}", "evacuation") for day in (5, 6, 7, 8)]
    drills.append(drill("2026-10-09", "lockdown", secondary_exit=True))  # not an evacuation
    results = evaluate(new_york, drills, year=2026, today=date(2026, 10, 10))
    evacuation = result(results, "evacuation")
    assert (evacuation.status, evacuation.done) == ("met", 8)
    secondary = result(results, "evacuation_secondary")
    assert (secondary.status, secondary.done) == ("met", 4)
    assert secondary.detail == "4 of 4 secondary-egress evacuation drills by 2027-06-30; met"


# The school year


def test_school_year_boundaries_decide_which_drills_count(new_york):
    drills = [drill("2026-06-30"), drill("2026-07-01"), drill("2027-06-30"), drill("2027-07-01")]
    year_2026 = result(evaluate(new_york, drills, year=2026, today=date(2026, 9, 1)), "total")
    assert year_2026.done == 2  # 2026-07-01 and 2027-06-30
    year_2025 = result(evaluate(new_york, drills, year=2025, today=date(2026, 9, 1)), "total")
    assert year_2025.done == 1  # 2026-06-30 belongs to the year that started 2025-07-01
    year_2027 = result(evaluate(new_york, drills, year=2027, today=date(2026, 9, 1)), "total")
    assert year_2027.done == 1


def test_a_past_school_year_is_judged_at_its_end(new_york):
    total = result(evaluate(new_york, autumn_drills(8), year=2026, today=date(2030, 1, 1)), "total")
    assert total.status == "behind"
    assert total.detail == "8 of 12 drills by 2027-06-30; deadline passed with 4 missing"


def test_a_future_school_year_is_on_track(new_york):
    results = evaluate(new_york, [], year=2027, today=date(2027, 3, 1))
    assert {r.status for r in results if r.rule != "summer" and r.rule != "summer_first_week"} == {"on_track"}


# Early dismissal


def early(day: str, at: str, notified: str | None, dismissal: time | None = time(15, 0)) -> DrillRecord:
    return drill(day, "early_dismissal", at,
                 parents_notified_on=date.fromisoformat(notified) if notified else None,
                 dismissal_time=dismissal)


def test_early_dismissal_ten_minutes_early_with_eight_days_notice_counts(new_york):
    results = evaluate(new_york, [early("2027-05-12", "14:50", "2027-05-04")], year=2026, today=MAY_13)
    early_dismissal = result(results, "early_dismissal")
    assert (early_dismissal.status, early_dismissal.done) == ("met", 1)
    assert early_dismissal.detail == "1 of 1 early-dismissal drills by 2027-06-30; met"


def test_early_dismissal_at_the_limits_counts(new_york):
    results = evaluate(new_york, [early("2027-05-12", "14:45", "2027-05-05")], year=2026, today=MAY_13)
    assert result(results, "early_dismissal").status == "met"


@pytest.mark.parametrize(
    ("held", "at", "notified", "dismissal", "why"),
    [
        ("2027-05-12", "14:40", "2027-05-04", time(15, 0),
         "2027-05-12 (20 min before dismissal, at most 15 allowed)"),
        ("2027-05-12", "14:50", "2027-05-09", time(15, 0), "2027-05-12 (3 days' notice, 7 needed)"),
        ("2027-05-12", "14:40", "2027-05-09", time(15, 0),
         "2027-05-12 (20 min before dismissal, at most 15 allowed, 3 days' notice, 7 needed)"),
        ("2027-05-12", "15:05", "2027-05-04", time(15, 0), "2027-05-12 (held after dismissal)"),
        ("2027-05-12", "14:50", None, time(15, 0), "2027-05-12 (no parent notice recorded)"),
        ("2027-05-12", "14:50", "2027-05-13", time(15, 0), "2027-05-12 (parents notified after the drill)"),
        ("2027-05-12", "14:50", "2027-05-04", None, "2027-05-12 (no dismissal time recorded)"),
    ],
)
def test_early_dismissal_that_breaks_a_condition_does_not_count(new_york, held, at, notified, dismissal, why):
    results = evaluate(new_york, [early(held, at, notified, dismissal)], year=2026, today=MAY_13)
    early_dismissal = result(results, "early_dismissal")
    assert (early_dismissal.status, early_dismissal.done) == ("on_track", 0)
    assert early_dismissal.detail == (
        f"0 of 1 early-dismissal drills by 2027-06-30; 1 more needed in 48 days; not counted: {why}"
    )


def test_early_dismissal_counts_as_a_drill_toward_the_total(new_york):
    results = evaluate(new_york, [early("2027-05-12", "14:50", "2027-05-04")], year=2026, today=MAY_13)
    assert result(results, "total").done == 1


# Summer school


def test_summer_rules_do_not_apply_without_a_summer_session(new_york):
    results = evaluate(new_york, [drill("2026-07-08", summer=True)], year=2026, today=JULY_30)
    for rule in ("summer", "summer_first_week"):
        summer = result(results, rule)
        assert summer.status == "not_applicable"
        assert summer.next_deadline is None
        assert summer.detail == "no summer session this school year"


def test_summer_session_counts_summer_drills_and_the_first_week(new_york):
    drills = [drill("2026-07-08", "evacuation", summer=True), drill("2026-07-20", summer=True)]
    results = evaluate(new_york, drills, year=2026, today=JULY_30, summer_session_start=SUMMER_START)
    summer = result(results, "summer")
    assert (summer.status, summer.done) == ("met", 2)
    first_week = result(results, "summer_first_week")
    assert (first_week.status, first_week.done) == ("met", 1)
    assert first_week.detail == "1 of 1 summer drills by 2026-07-12; met"


def test_summer_session_without_a_first_week_drill_is_behind(new_york):
    drills = [drill("2026-07-14", summer=True), drill("2026-07-20", summer=True)]
    results = evaluate(new_york, drills, year=2026, today=JULY_30, summer_session_start=SUMMER_START)
    assert result(results, "summer").status == "met"
    first_week = result(results, "summer_first_week")
    assert (first_week.status, first_week.done) == ("behind", 0)
    assert first_week.next_deadline == date(2026, 7, 12)
    assert first_week.detail == "0 of 1 summer drills by 2026-07-12; deadline passed with 1 missing"


def test_summer_drills_are_in_addition_to_the_years_twelve(new_york):
    drills = [drill("2026-07-08", summer=True), drill("2026-07-09")]
    results = evaluate(new_york, drills, year=2026, today=JULY_30, summer_session_start=SUMMER_START)
    assert result(results, "total").done == 1
    assert result(results, "summer").done == 1  # the unflagged drill is a regular-year drill


def test_summer_session_outside_the_school_year_does_not_apply(new_york):
    results = evaluate(new_york, [], year=2026, today=JULY_30, summer_session_start=date(2027, 7, 5))
    assert result(results, "summer").status == "not_applicable"
    assert result(results, "summer").detail == "summer session starts 2027-07-05, outside this school year"


# Different times of the day


def test_drills_all_in_the_morning_cover_one_time_of_day(new_york):
    drills = [drill("2026-09-08", at=at) for at in ("08:30", "09:00", "10:59")]
    times = result(evaluate(new_york, drills, year=2026, today=date(2026, 10, 1)), "times_of_day")
    assert (times.done, times.required, times.status) == (1, 3, "on_track")
    assert times.detail == "1 of 3 times of day (morning) by 2027-06-30; 2 more needed in 272 days"


def test_drills_in_morning_midday_and_afternoon_meet_times_of_day(new_york):
    drills = [drill("2026-09-08", at=at) for at in ("08:30", "11:00", "14:10")]
    times = result(evaluate(new_york, drills, year=2026, today=date(2026, 10, 1)), "times_of_day")
    assert (times.done, times.status) == (3, "met")
    assert times.detail == "3 of 3 times of day (morning, midday, afternoon) by 2027-06-30; met"


def test_period_boundaries_belong_to_the_later_period(new_york):
    drills = [drill("2026-09-08", at="12:59"), drill("2026-09-15", at="13:00")]
    times = result(evaluate(new_york, drills, year=2026, today=date(2026, 10, 1)), "times_of_day")
    assert times.detail.startswith("2 of 3 times of day (midday, afternoon)")


def test_a_rule_can_count_only_some_periods():
    text = """\
name: Test
school_year_start: "07-01"
periods:
  morning: {from: "07:00", to: "12:00"}
  afternoon: {from: "12:00", to: "16:00"}
rules:
  - id: afternoons
    kind: distinct_periods
    description: One afternoon drill
    required: 1
    periods: [afternoon]
"""
    ruleset, problems = load_rules_text(text)
    assert problems == []
    drills = [drill("2026-09-08", at="08:00"), drill("2026-09-09", at="18:00")]
    afternoons = evaluate(ruleset, drills, year=2026, today=date(2026, 10, 1))[0]
    assert afternoons.done == 0
    afternoons = evaluate(ruleset, [drill("2026-09-10", at="13:00")], year=2026, today=date(2026, 10, 1))[0]
    assert afternoons.done == 1


# Manual records, summaries


def test_manual_records_count_and_are_marked(new_york):
    drills = autumn_drills(3) + [drill("2026-10-30", manual=True)]
    total = result(evaluate(new_york, drills, year=2026, today=date(2026, 11, 1)), "total")
    assert total.done == 4
    assert total.detail == "4 of 12 drills by 2027-06-30 (1 entered by hand); 8 more needed in 241 days"


def test_results_follow_the_order_of_the_rules_file(new_york):
    results = evaluate(new_york, [], year=2026, today=date(2026, 7, 1))
    assert [r.rule for r in results] == [rule.id for rule in new_york.rules]
    assert all(r.description == rule.description for r, rule in zip(results, new_york.rules, strict=True))


def test_summary_is_the_worst_applicable_status(new_york):
    results = evaluate(new_york, twelve_with_three_lockdowns(), year=2026, today=date(2027, 7, 1))
    summary = summarize(results)
    assert summary["status"] == "behind"
    assert summary["rules"] == 9
    assert sum(summary["counts"].values()) == 9
    assert summary["counts"]["not_applicable"] == 2
    assert "lockdown" in summary["behind"]
    assert "total" not in summary["behind"]


def test_summary_statuses():
    def of(*statuses: str) -> str:
        results = [RuleResult(f"rule{i}", "", 1, 0, 1, status, None, "") for i, status in enumerate(statuses)]
        return summarize(results)["status"]

    assert of("met", "on_track", "not_applicable") == "on_track"
    assert of("met", "not_applicable") == "met"
    assert of("not_applicable") == "not_applicable"
    assert of() == "not_applicable"
    assert summarize([])["counts"] == {"met": 0, "on_track": 0, "behind": 0, "not_applicable": 0}
