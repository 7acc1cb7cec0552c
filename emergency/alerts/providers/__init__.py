"""Alert providers: Twilio in production, the console on a laptop, chosen in one place from config."""

from emergency.alerts.providers.base import (
    CHANNELS,
    ERROR_REASONS,
    PERMANENT_CODES,
    TEMPORARY_CODES,
    Channel,
    Provider,
    ProviderError,
    SendResult,
    classify,
)
from emergency.alerts.providers.console import ConsoleProvider
from emergency.alerts.providers.twilio import RewritingHttpClient, TwilioProvider

__all__ = [
    "CHANNELS",
    "ERROR_REASONS",
    "PERMANENT_CODES",
    "TEMPORARY_CODES",
    "Channel",
    "ConsoleProvider",
    "Provider",
    "ProviderError",
    "RewritingHttpClient",
    "SendResult",
    "TwilioProvider",
    "classify",
]
