"""`emergency directory import|export`: the directory as CSV files."""

from __future__ import annotations

from pathlib import Path

import click

from emergency.cli_support import import_failed, with_app

directory = click.Group("directory", help="Schools, rooms, people and partners as CSV files.")


@directory.command("import")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the files and show what would change; change nothing.")
@with_app
def import_command(app, path: Path, dry_run: bool) -> None:
    """Import schools.csv, rooms.csv, people.csv and partners.csv from the folder PATH (all or nothing)."""
    from emergency.db import db
    from emergency.directory.csv_io import ImportFailed, import_directory

    try:
        report = import_directory(db.session, path, dry_run=dry_run, region=app.config["DEFAULT_REGION"])
    except ImportFailed as exc:
        import_failed(exc)
    for line in report.lines():
        click.echo(line)


@directory.command("export")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path))
@with_app
def export_command(app, path: Path) -> None:
    """Write the directory to the folder PATH as four CSV files that `import` reads back."""
    from emergency.db import db
    from emergency.directory.csv_io import export_directory

    for name, count in export_directory(db.session, path).items():
        click.echo(f"{path / name}: {count} rows")
