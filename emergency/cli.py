"""The `emergency` command."""

from __future__ import annotations

import logging
import sys

import click

from emergency.cli_support import build_app, command_config, with_app
from emergency.config import Config, ConfigError

log = logging.getLogger(__name__)


@click.group()
@click.version_option(package_name="emergency")
def main() -> None:
    """Run school drills and real emergencies: alerts, acknowledgements, accountability."""


@main.command()
@click.option("--demo", is_flag=True, help="Migrate, load the demo district if empty, print demo logins.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(demo: bool, host: str, port: int) -> None:
    """Serve HTTP and Socket.IO (development server; use gunicorn in production)."""
    from emergency.app import create_app, require_migrated, start_background
    from emergency.db import db
    from emergency.migrate import upgrade

    try:
        config = Config.from_env()
        if demo:
            config.ENV = "demo" if config.ENV == "production" else config.ENV
            if config.PUBLIC_BASE_URL == Config.PUBLIC_BASE_URL:
                config.PUBLIC_BASE_URL = f"http://{host}:{port}"
        config.resolved()
        if demo:
            upgrade(config.DATABASE_URL)
        app = create_app(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        require_migrated(app)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    with app.app_context():
        if demo:
            from emergency.demo import ensure_demo

            for line in ensure_demo(db.session, app):
                click.echo(line)
    start_background(app)
    click.echo(f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/api/docs)")
    app.extensions["socketio"].run(app, host=host, port=port, allow_unsafe_werkzeug=True,
                                   use_reloader=False, log_output=False)


@main.command()
def worker() -> None:
    """Run the alert dispatcher as its own process (with DISPATCHER=off in the web processes)."""
    from emergency.alerts.setup import run_worker

    app = build_app()
    run_worker(app)


@main.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the migrations."""
    from emergency.migrate import upgrade

    try:
        config = command_config().resolved()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    upgrade(config.DATABASE_URL, revision)
    click.echo(f"Database is at {revision}.")


@main.group("users")
def users_group() -> None:
    """Accounts of people and partners."""


@users_group.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@with_app
def set_password(app, email: str, password_stdin: bool) -> None:
    """Create or update the login of the person or partner with EMAIL."""
    from emergency.accounts.service import set_password as set_pw
    from emergency.db import db
    from emergency.errors import DomainError
    from emergency.migrate import is_current

    if not is_current(db.engine()):
        raise click.ClickException("The database is not migrated: run `emergency db upgrade` first.")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        set_pw(db.session, email, password)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Password set for {email.strip().lower()}.")


def _register_domain_groups() -> None:
    from emergency.accountability.cli import privacy
    from emergency.alerts.cli import sms
    from emergency.compliance.cli import compliance
    from emergency.directory.cli import directory
    from emergency.playbooks.cli import playbooks
    from emergency.roster.cli import roster

    for group in (directory, playbooks, sms, privacy, compliance, roster):
        main.add_command(group)


_register_domain_groups()
