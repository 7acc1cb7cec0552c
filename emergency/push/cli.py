"""`emergency push keys`: a VAPID key pair for Web Push."""

from __future__ import annotations

import click

from emergency.push.vapid import generate_private_key, public_key


@click.group("push")
def push() -> None:
    """Web Push notifications."""


@push.command("keys")
def keys() -> None:
    """Generate a VAPID key pair: set the private key as VAPID_PRIVATE_KEY; the console fetches the public one."""
    private_key = generate_private_key()
    click.echo(f"VAPID_PRIVATE_KEY={private_key}")
    click.echo(f"VAPID public key (the console's applicationServerKey, served at /api/v1/push/config): "
               f"{public_key(private_key)}")
    click.echo("Keep the private key secret and stable: changing it turns push off on every registered device "
               "until it registers again.", err=True)
