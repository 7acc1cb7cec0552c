"""The provider as the dispatcher uses it: every send counted by channel and outcome, and timed."""

from __future__ import annotations

import time

from emergency.alerts.providers.base import Provider, ProviderError
from emergency.metrics.instruments import ALERT_SENDS, PROVIDER_LATENCY


class InstrumentedProvider:
    """Wraps the real provider: counts every send by channel and outcome, and times it."""

    def __init__(self, inner: Provider):
        self.inner = inner
        self.name = inner.name

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send_sms(self, to, body, **kwargs):
        return self._timed("sms", self.inner.send_sms, to, body, **kwargs)

    def place_call(self, to, **kwargs):
        return self._timed("voice", self.inner.place_call, to, **kwargs)

    def _timed(self, channel: str, send, *args, **kwargs):
        started = time.perf_counter()
        outcome = "crashed"
        try:
            result = send(*args, **kwargs)
            outcome = "sent"
            return result
        except ProviderError as exc:
            outcome = "temporary_error" if exc.temporary else "permanent_error"
            raise
        finally:
            PROVIDER_LATENCY.labels(channel).observe(time.perf_counter() - started)
            ALERT_SENDS.labels(channel, outcome).inc()


def instrument(provider: Provider) -> Provider:
    """The provider, counted and timed (once, however often it is called)."""
    return provider if isinstance(provider, InstrumentedProvider) else InstrumentedProvider(provider)
