"""`emergency privacy`: student data retention (NY Education Law §2-d)."""

from __future__ import annotations

import click

from emergency.cli_support import with_app
from emergency.db import db
from emergency.privacy.purge import purge_student_data


@click.group("privacy")
def privacy() -> None:
    """Student data retention."""


@privacy.command("purge")
@click.option("--older-than", "days", type=click.IntRange(min=0), default=None,
              help="Runs that ended more than DAYS ago (default: the PRIVACY_RETENTION_DAYS setting, 30).")
@with_app
def purge(app, days: int | None) -> None:
    """Replace student names with counts in ended runs, and clear old inbound SMS bodies."""
    days = app.config["PRIVACY_RETENTION_DAYS"] if days is None else days
    result = purge_student_data(db.session, days)
    click.echo(f"Purged student names and notes from {result['checkins']} check-ins of runs ended more than "
               f"{days} days ago.")
    click.echo(f"Deleted {result['student_statuses']} student-level statuses (counts stay).")
    click.echo(f"Cleared {result['staff_notes']} staff notes and {result['inbound_messages']} inbound SMS bodies.")
