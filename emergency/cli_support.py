"""Shared by the CLI groups of each domain: build the app once a command needs it."""

from __future__ import annotations

import functools
import secrets

import click

from emergency.config import Config, ConfigError
from emergency.db import db


def command_config() -> Config:
    """Settings for a command that serves nothing: it needs no SECRET_KEY, so one is made up if unset."""
    config = Config.from_env()
    if not config.SECRET_KEY:
        config.SECRET_KEY = secrets.token_hex(32)
    return config


def build_app(**overrides):
    """The app for a CLI command: environment settings, no background dispatcher."""
    from emergency.app import create_app

    try:
        config = command_config()
        config.DISPATCHER = "off"
        for key, value in overrides.items():
            setattr(config, key, value)
        return create_app(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def with_app(func):
    """Run the command inside an app context as one transaction; the app is passed as the first argument.

    The command's services flush; what they wrote is committed once the command returns (an error rolls it back).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        app = build_app()
        with app.app_context():
            result = func(app, *args, **kwargs)
            db.session.commit()
            return result

    return wrapper


def import_failed(exc) -> None:
    """Print every problem of a failed all-or-nothing import (csvfiles.ImportFailed) and exit 1."""
    for problem in exc.problems:
        click.echo(problem, err=True)
    click.echo(f"{len(exc.problems)} problem(s); nothing was imported.", err=True)
    raise click.exceptions.Exit(1) from None
