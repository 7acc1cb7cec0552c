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


@click.command("reload")
def reload() -> None:
    """Reload playbooks in a running service (POSTs to its admin API; needs EMERGENCY_URL and EMERGENCY_TOKEN)."""
    import requests

    base = os.environ.get("EMERGENCY_URL", "http://127.0.0.1:5000").rstrip("/")
    token = os.environ.get("EMERGENCY_TOKEN", "")
    if not token:
        raise click.ClickException("Set EMERGENCY_TOKEN to a district admin's bearer token "
                                   "(POST /api/v1/auth/login) and EMERGENCY_URL to the service.")
    try:
        response = requests.post(f"{base}/api/v1/playbooks/reload", headers={"Authorization": f"Bearer {token}"},
                                 timeout=30)
    except requests.RequestException as exc:
        raise click.ClickException(f"Could not reach {base}: {exc}") from None
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise click.ClickException(body.get("message") or f"HTTP {response.status_code}")
    for problem in body.get("problems", []):
        click.echo(problem)
    click.echo(f"{len(body.get('loaded', []))} playbooks loaded: {', '.join(body.get('loaded', []))}")
    if body.get("problems"):
        raise SystemExit(1)


playbooks.add_command(check)
playbooks.add_command(reload)
