"""`emergency compliance report|check`: drill compliance and the drill log from the command line."""

from __future__ import annotations

import csv
import os
import sys

import click
from sqlalchemy import select

from emergency.cli_support import with_app
from emergency.compliance.rules import load_rules, school_year_bounds, school_year_of

REPORT_COLUMNS = ("school_code", "school", "rule", "required", "done", "remaining", "status", "next_deadline",
                  "detail")
DRILL_LOG_COLUMNS = ("date", "time", "type", "building", "duration", "duration_seconds", "secondary_exit",
                     "summer", "source", "school_code")


@click.group("compliance")
def compliance() -> None:
    """Drill compliance: where each school stands, and the drill log for inspectors."""


@compliance.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
def check(file: str | None) -> None:
    """Check a rules FILE (default: $COMPLIANCE_RULES or rules/new-york.yaml); exit 1 on any problem."""
    file = file or os.environ.get("COMPLIANCE_RULES") or "rules/new-york.yaml"
    ruleset, problems = load_rules(file)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        raise SystemExit(1)
    click.echo(f"{file}: {ruleset.name}, {len(ruleset.rules)} rules OK: "
               + ", ".join(rule.id for rule in ruleset.rules))


@compliance.command("report")
@click.option("--year", type=int, help="The year the school year starts (default: the current school year).")
@click.option("--school", "school_code", metavar="CODE", help="One school (default: every school).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per school and rule, instead of a table.")
@click.option("--drill-log", is_flag=True, help="The drill log as CSV: date, time, type, building, duration.")
@click.option("--summer-start", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="First day of summer school (YYYY-MM-DD); without it the summer rules do not apply.")
@with_app
def report(app, year: int | None, school_code: str | None, as_csv: bool, drill_log: bool, summer_start) -> None:
    """Print where each school stands on every rule (a table, or CSV), or export the drill log."""
    from emergency.compliance import service
    from emergency.db import db
    from emergency.directory.models import School
    from emergency.errors import DomainError

    try:
        ruleset = service.rules_for(app)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    query = select(School).order_by(School.code)
    if school_code:
        query = query.where(School.code == school_code)
    schools = list(db.session.scalars(query))
    if school_code and not schools:
        raise click.ClickException(f"There is no school with code {school_code!r}.")
    summer = summer_start.date() if summer_start else None
    year = year if year is not None else school_year_of(service.district_today(schools), ruleset)
    if drill_log:
        _print_drill_log(service, db.session, schools, ruleset, year)
        return
    reports = [service.school_compliance(db.session, ruleset, school, year=year, summer_session_start=summer)
               for school in schools]
    if as_csv:
        _print_csv(reports)
    elif school_code:
        _print_school(reports[0])
    else:
        _print_district(reports, ruleset, year)


def _print_csv(reports: list[dict]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for report in reports:
        for rule in report["rules"]:
            writer.writerow([report["school"]["code"], report["school"]["name"], rule["rule"], rule["required"],
                             rule["done"], rule["remaining"], rule["status"], rule["next_deadline"] or "",
                             rule["detail"]])


def _table(headers: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """Rows padded into columns; the last column is left ragged."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = []
    for row in [list(headers), ["-" * width for width in widths], *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return lines


def _print_school(report: dict) -> None:
    school, year = report["school"], report["school_year"]
    drills = report["drills"]
    click.echo(f"{school['name']} ({school['code']}): school year {report['year']} "
               f"({year['start']} to {year['end']}), as of {report['today']}")
    click.echo(f"Rules: {report['rules_file']['name']}. Drills recorded: {drills['total']}"
               f" ({drills['manual']} entered by hand). Overall: {report['summary']['status'].replace('_', ' ')}")
    click.echo("")
    rows = [[rule["rule"], rule["required"], rule["done"], rule["remaining"], rule["status"].replace("_", " "),
             rule["next_deadline"] or "", rule["detail"]] for rule in report["rules"]]
    for line in _table(("rule", "required", "done", "left", "status", "deadline", "detail"), rows):
        click.echo(line)


def _print_district(reports: list[dict], ruleset, year: int) -> None:
    click.echo(f"Drill compliance, school year {year} ({ruleset.name})")
    click.echo("")
    rows = [[report["school"]["code"], report["school"]["name"], report["summary"]["status"].replace("_", " "),
             report["drills"]["total"], ", ".join(report["summary"]["behind"]) or "-"] for report in reports]
    for line in _table(("code", "school", "status", "drills", "behind on"), rows):
        click.echo(line)
    behind = sum(1 for report in reports if report["summary"]["status"] == "behind")
    click.echo("")
    click.echo(f"{len(reports)} schools, {behind} behind.")


def _print_drill_log(service, session, schools, ruleset, year: int) -> None:
    first, last = school_year_bounds(year, ruleset)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(DRILL_LOG_COLUMNS)
    for drill in service.drill_log(session, schools, first, last):
        record = drill.record
        kind = record.category.replace("_", " ")
        seconds = record.duration_seconds
        writer.writerow([record.day.isoformat(), record.held_at.strftime("%H:%M"), kind, drill.school.name,
                         _minutes(seconds), "" if seconds is None else seconds,
                         "yes" if record.used_secondary_exit else "no", "yes" if record.summer else "no",
                         "manual" if record.manual else "system", drill.school.code])


def _minutes(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds // 60}:{seconds % 60:02d}"
