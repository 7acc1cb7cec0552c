"""The interface every alert provider implements, and how provider errors are classified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Channel = Literal["sms", "voice"]
CHANNELS: tuple[Channel, ...] = ("sms", "voice")

# Retrying these can never succeed and, for 21610, would keep texting someone who replied STOP.
PERMANENT_CODES = frozenset({21211, 21610, 21614})
# Twilio's "too many requests": the account's concurrency limit, gone after a backoff.
TEMPORARY_CODES = frozenset({20429})

# What the live board and the delivery report show next to a failed recipient.
ERROR_REASONS: dict[int, str] = {
    20003: "provider authentication failed",
    20404: "not found at provider",
    20429: "rate limited",
    20500: "provider internal error",
    20503: "provider unavailable",
    21211: "invalid number",
    21212: "invalid sender number",
    21408: "region not enabled for this account",
    21602: "message body is empty",
    21603: "no sender configured",
    21606: "sender number cannot send SMS",
    21610: "recipient unsubscribed (STOP)",
    21612: "carrier cannot route to this number",
    21614: "not a mobile number",
    21617: "message body too long",
    30003: "phone unreachable",
    30004: "message blocked",
    30005: "unknown number",
    30006: "landline or unreachable carrier",
    30007: "carrier filtered",
    30008: "unknown delivery error",
}


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it accepted a message or call."""

    sid: str | None
    status: str


class ProviderError(Exception):
    """A send, call or status fetch failed; `temporary` says whether a retry can help."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        temporary: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.temporary = temporary
        self.retry_after = retry_after  # seconds the provider asked us to wait (Retry-After)

    @property
    def reason(self) -> str | None:
        """A short human reason for the error code, if it is a known one."""
        return ERROR_REASONS.get(self.code) if self.code is not None else None

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.message!r}, code={self.code!r}, "
            f"http_status={self.http_status!r}, temporary={self.temporary!r})"
        )


@runtime_checkable
class Provider(Protocol):
    """Sends SMS and places voice calls; implemented by the Twilio and console providers."""

    name: str

    def send_sms(self, to: str, body: str, *, status_callback: str | None) -> SendResult:
        """Queue one SMS; raise ProviderError if the provider refuses it.

        Providers with a sender pool (Twilio) also take `sender=`: the pool number to send from.
        """
        ...

    def place_call(self, to: str, *, twiml_url: str, status_callback: str | None) -> SendResult:
        """Start one voice call that fetches its TwiML from `twiml_url`."""
        ...

    def fetch_status(self, channel: str, sid: str) -> tuple[str, int | None]:
        """Return the provider's current (status, error code) for a message ("sms") or call ("voice")."""
        ...


def classify(http_status: int | None, code: int | None) -> bool:
    """Return True if a failure with this HTTP status and Twilio code is worth retrying."""
    if code in TEMPORARY_CODES:
        return True
    if code in PERMANENT_CODES:
        return False
    if http_status is None:
        # No HTTP answer at all: a network error or timeout.
        return True
    if http_status == 429 or http_status >= 500:
        return True
    # Any other 4xx is a verdict on the request. Anything else (a redirect from a captive proxy,
    # say) is not the recipient's fault: an alert retried a bounded number of times beats one
    # silently dropped.
    return not 400 <= http_status < 500
