"""The `emergency` command."""

from __future__ import annotations

import logging
import os
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
@click.option("--connections", default=10000, show_default=True, type=int,
              help="Live connections (and requests) one process holds at once.")
def serve(demo: bool, host: str, port: int, connections: int) -> None:
    """Serve HTTP and Socket.IO as the Procfile does: gunicorn, one gevent worker."""
    from emergency.app import create_app, require_migrated, require_redis
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
        require_redis(app)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    with app.app_context():
        if demo:
            from emergency.demo import ensure_demo

            for line in ensure_demo(db.session, app):
                click.echo(line)
            db.session.commit()  # the demo is loaded before the server (another process) starts
    app.extensions["db"]["engine"].dispose()
    click.echo(f"Serving on http://{host}:{port}  (API docs: http://{host}:{port}/api/docs)")
    # The checks ran here; the server is a fresh process, so gevent patches the standard library
    # before anything of the app is imported (emergency.serving). Same command as the Procfile.
    env = {**os.environ, "ENV": config.ENV, "PUBLIC_BASE_URL": config.PUBLIC_BASE_URL,
           "DATABASE_URL": config.DATABASE_URL}
    exec_server(gunicorn_command(host, port, connections), env)


def gunicorn_command(host: str, port: int, connections: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gevent", "--worker-connections", str(connections),
            "--timeout", "120", "-b", f"{host}:{port}", "emergency.wsgi:app"]


def exec_server(command: list[str], env: dict) -> None:
    """Replace this process with the server (a seam for tests)."""
    sys.stdout.flush()
    os.execve(command[0], command, env)


@main.command()
def worker() -> None:
    """Run the alert dispatcher as its own process (with DISPATCHER=off in the web processes)."""
    from emergency.alerts.setup import run_worker
    from emergency.app import require_redis

    app = build_app()
    try:
        require_redis(app)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
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


@main.command("demo")
@with_app
def demo(app) -> None:
    """Load the demo district into a database with no schools yet, and print its logins (compose: DEMO=1)."""
    from emergency.db import db
    from emergency.demo import ensure_demo

    for line in ensure_demo(db.session, app):
        click.echo(line)


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
    from emergency.compliance.cli import compliance
    from emergency.directory.cli import directory
    from emergency.playbooks.cli import playbooks
    from emergency.privacy.cli import privacy
    from emergency.push.cli import push
    from emergency.roster.cli import roster
    from emergency.sms.cli import sms

    for group in (directory, playbooks, sms, privacy, compliance, roster, push):
        main.add_command(group)


_register_domain_groups()
