"""`emergency sms receive`: play the part of a staff phone when running without Twilio."""

from __future__ import annotations

import click

from emergency.cli_support import with_app

sms = click.Group("sms", help="Text messages without Twilio (console provider): reply as a staff phone would.")


@sms.command("receive")
@click.option("--from", "from_number", required=True, help="The sender's mobile number, e.g. +12125550123.")
@click.argument("text")
@with_app
def receive(app, from_number: str, text: str) -> None:
    """Handle TEXT as an SMS from --from exactly as the Twilio webhook would, and print the reply."""
    from emergency.db import db
    from emergency.phones import InvalidPhone, normalise_phone
    from emergency.sms.inbound import handle_inbound_sms

    try:
        number = normalise_phone(from_number, app.config["DEFAULT_REGION"])
    except InvalidPhone as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from None
    reply = handle_inbound_sms(db.session, number, text)
    click.echo(reply if reply is not None else "(no reply)")
