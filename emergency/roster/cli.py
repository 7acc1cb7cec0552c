"""`emergency roster import|schedules|access-log`: the district's OneRoster export and bell schedules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from emergency.cli_support import import_failed, with_app
from emergency.db import db
from emergency.roster.oneroster import RosterImportFailed, import_roster
from emergency.roster.schedules import import_schedules
from emergency.roster.service import access_log_csv, access_log_entries
from emergency.timeutil import utcnow

roster = click.Group("roster", help="Student rosters (OneRoster CSV) and bell schedules.")


@roster.command("import")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the export and show what would change; change nothing.")
@with_app
def import_command(app, path: Path, dry_run: bool) -> None:
    """Import a OneRoster 1.1 or 1.2 CSV export (manifest.csv, orgs.csv, users.csv, ...) from PATH, all or nothing."""
    try:
        report = import_roster(db.session, path, dry_run=dry_run)
    except RosterImportFailed as exc:
        import_failed(exc)
    for line in report.lines():
        click.echo(line)


@roster.command("schedules")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file; change nothing.")
@with_app
def schedules_command(app, path: Path, dry_run: bool) -> None:
    """Import bell_schedules.csv (PATH is the file or its folder); each listed school's schedule is replaced."""
    try:
        counts = import_schedules(db.session, path, dry_run=dry_run)
    except RosterImportFailed as exc:
        import_failed(exc)
    verb = "would replace" if dry_run else "replaced"
    for code, periods in sorted(counts.items()):
        click.echo(f"{code}: {verb} the bell schedule ({periods} periods)")


@roster.command("access-log")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True, help="The last DAYS days.")
@with_app
def access_log_command(app, path: Path, days: int) -> None:
    """Write the §2-d log of student-list reads (every school) to the CSV file PATH."""
    entries = access_log_entries(db.session, since=utcnow() - timedelta(days=days))
    path.write_text(access_log_csv(entries), encoding="utf-8")
    click.echo(f"{path}: {len(entries)} reads")
