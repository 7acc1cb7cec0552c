"""A provider that only logs: lets the whole product run on a laptop with no Twilio account."""

from __future__ import annotations

import logging
import uuid

from emergency.alerts.providers.base import CHANNELS, SendResult
from emergency.phones import mask_phone

_default_logger = logging.getLogger("emergency.alerts.console")


class ConsoleProvider:
    """Logs every SMS and call at INFO and reports it delivered at once.

    Numbers are logged whole only with `show_numbers` (development and demo, where a developer answers
    as a teacher would); otherwise only their last 4 digits, since staff phones are private.
    """

    name = "console"

    def __init__(self, logger: logging.Logger | None = None, *, show_numbers: bool = False) -> None:
        # Holds no mutable state: uuid4 and logging are thread-safe, so the dispatcher's
        # worker threads can share one instance.
        self._logger = logger or _default_logger
        self._shown = (lambda number: number) if show_numbers else mask_phone

    def send_sms(self, to: str, body: str, *, status_callback: str | None = None,
                 sender: str | None = None) -> SendResult:
        """Log the SMS and return a delivered result."""
        self._logger.info("SMS to %s : %s", self._shown(to), body)
        return SendResult(sid=_new_sid(), status="delivered")

    def place_call(self, to: str, *, twiml_url: str, status_callback: str | None = None,
                   sender: str | None = None) -> SendResult:
        """Log the call and return a completed result."""
        self._logger.info("Call to %s : %s", self._shown(to), twiml_url)
        return SendResult(sid=_new_sid(), status="completed")

    def fetch_status(self, channel: str, sid: str) -> tuple[str, int | None]:
        """Report the final status the console provider always reaches."""
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}, expected one of {CHANNELS}")
        return ("delivered" if channel == "sms" else "completed", None)


def _new_sid() -> str:
    return f"CONSOLE-{uuid.uuid4().hex}"
