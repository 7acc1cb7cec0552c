"""`emergency compliance report` (table, CSV, drill log) and `emergency compliance check`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

import emergency.cli
from emergency.compliance.models import ManualDrill
from tests.compliance import test_counting

# Shared fixtures: runs written straight to the database, and a fixed today.
make_drill, today = test_counting.make_drill, test_counting.today

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "new-york.yaml"


@pytest.fixture
def cli(database_url):
    """Run `emergency ...` in-process against the test database."""

    def run(*args: str, rules: Path = RULES):
        env = {"DATABASE_URL": database_url, "ENV": "test", "COMPLIANCE_RULES": str(rules),
               "PLAYBOOKS_DIR": str(REPO / "playbooks")}
        return CliRunner().invoke(emergency.cli.main, list(args), env=env)

    return run


@pytest.fixture
def district(make_school, make_drill, session, today):
    """Lincoln with seven autumn drills (one entered by hand) and a lockdown; Washington with none."""
    lincoln = make_school(code="LIN", name="Lincoln Elementary")
    make_school(code="WAS", name="Washington Middle")
    for day in ("09-08", "09-22", "10-06", "10-20", "11-03", "11-17"):
        make_drill(lincoln, f"2026-{day} 10:00", facts={"secondary_exit": day == "09-08"})
    make_drill(lincoln, "2026-11-24 13:30", "lockdown", minutes=12)
    session.add(ManualDrill(school_id=lincoln.id, category="evacuation", held_at=test_counting.local(
        "2026-12-01 09:00"), duration_seconds=420, entered_by={"kind": "person", "id": 1, "name": "Pat"}))
    session.commit()
    today("2027-01-05")
    return lincoln


def test_school_report_is_a_readable_table(cli, district):
    result = cli("compliance", "report", "--year", "2026", "--school", "LIN")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Lincoln Elementary (LIN): school year 2026 (2026-07-01 to 2027-06-30), as of 2027-01-05"
    assert "Drills recorded: 8 (1 entered by hand). Overall: behind" in lines[1]
    header = next(line for line in lines if line.startswith("rule "))
    assert header.split() == ["rule", "required", "done", "left", "status", "deadline", "detail"]
    december = next(line for line in lines if line.startswith("by_december_31 "))
    assert december.split()[:4] == ["by_december_31", "8", "8", "0"]
    assert " met " in december
    lockdown = next(line for line in lines if line.startswith("lockdown "))
    assert "1 of 4 lockdown drills by 2027-06-30" in lockdown


def test_district_report_lists_every_school(cli, district):
    result = cli("compliance", "report", "--year", "2026")

    assert result.exit_code == 0, result.output
    assert "Drill compliance, school year 2026 (New York State)" in result.output
    washington = next(line for line in result.output.splitlines() if line.startswith("WAS "))
    assert "behind" in washington and "total, by_december_31" in washington
    assert "2 schools, 2 behind." in result.output


def test_csv_report_has_one_row_per_school_and_rule(cli, district):
    result = cli("compliance", "report", "--year", "2026", "--csv")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 2 * 9
    row = next(r for r in rows if (r["school_code"], r["rule"]) == ("LIN", "by_december_31"))
    assert (row["required"], row["done"], row["remaining"], row["status"]) == ("8", "8", "0", "met")
    assert row["detail"] == "8 of 8 drills by 2026-12-31 (1 entered by hand); met"


def test_drill_log_exports_date_time_type_building_and_duration(cli, district):
    result = cli("compliance", "report", "--year", "2026", "--school", "LIN", "--drill-log")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0])[:5] == ["date", "time", "type", "building", "duration"]
    assert [(r["date"], r["time"], r["type"]) for r in rows][-2:] == [
        ("2026-11-24", "13:30", "lockdown"), ("2026-12-01", "09:00", "evacuation")]
    first = rows[0]
    assert (first["building"], first["duration"], first["duration_seconds"]) == ("Lincoln Elementary", "8:00", "480")
    assert (first["secondary_exit"], first["source"]) == ("yes", "system")
    assert (rows[-1]["source"], rows[-1]["duration"]) == ("manual", "7:00")
    assert len(rows) == 8


def test_unknown_school_code_is_an_error(cli, district):
    result = cli("compliance", "report", "--school", "NOPE")

    assert result.exit_code != 0
    assert "no school with code 'NOPE'" in result.output


def test_report_with_a_bad_rules_file_fails_clearly(cli, district, tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text("name: Broken\n")

    result = cli("compliance", "report", rules=bad)

    assert result.exit_code == 1
    assert f"the rules file {bad} has" in result.output


def test_check_accepts_the_new_york_rules(cli):
    result = cli("compliance", "check", str(RULES))

    assert result.exit_code == 0, result.output
    assert "New York State, 9 rules OK" in result.output


def test_check_lists_every_problem_and_exits_1(cli, tmp_path):
    bad = tmp_path / "rules.yaml"
    bad.write_text('name: Somewhere\nschool_year_start: "13-01"\nrules:\n  - id: total\n    kind: tally\n'
                   "    description: x\n    required: twelve\n")

    result = cli("compliance", "check", str(bad))

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{bad}:2:20: school_year_start: '13-01' is not a valid month and day" in lines
    assert any(line.startswith(f"{bad}:5:11: rules[0].kind: unknown rule kind 'tally'") for line in lines)
    assert all(line.startswith(f"{bad}:") for line in lines)


def test_check_defaults_to_compliance_rules(cli, tmp_path):
    assert cli("compliance", "check").exit_code == 0
    missing = cli("compliance", "check", rules=tmp_path / "missing.yaml")
    assert missing.exit_code == 1
