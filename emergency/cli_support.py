"""Shared by the CLI groups of each domain: build the app once a command needs it."""

from __future__ import annotations

import functools

import click

from emergency.config import Config, ConfigError


def build_app(**overrides):
    """The app for a CLI command: environment settings, no background dispatcher."""
    from emergency.app import create_app

    try:
        config = Config.from_env()
        config.DISPATCHER = "off"
        for key, value in overrides.items():
            setattr(config, key, value)
        return create_app(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def with_app(func):
    """Run the command inside an app context; the app is passed as the first argument."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        app = build_app()
        with app.app_context():
            return func(app, *args, **kwargs)

    return wrapper
