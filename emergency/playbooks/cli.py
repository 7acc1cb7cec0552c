"""`emergency playbooks check [DIR]`: validate playbooks without starting the app."""

from __future__ import annotations

import os

import click

from emergency.playbooks.loader import check_directory, sorted_playbooks


@click.group("playbooks")
def playbooks() -> None:
    """Work with the district's playbook files."""


@click.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def check(directory: str | None) -> None:
    """Check every playbook in DIR (default: $PLAYBOOKS_DIR or ./playbooks); exit 1 on any problem."""
    directory = directory or os.environ.get("PLAYBOOKS_DIR") or "playbooks"
    found, problems = check_directory(directory)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        raise SystemExit(1)
    keys = ", ".join(playbook.key for playbook in sorted_playbooks(found.values()))
    click.echo(f"{len(found)} playbooks OK: {keys}")


playbooks.add_command(check)
