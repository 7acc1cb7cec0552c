"""The counters, histograms and live gauges, and the one-line hooks the rest of the code calls.

This module imports nothing of the domain, so any layer may call its hooks.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
SECONDS_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1800, 3600)

ALERT_SENDS = Counter("emergency_alert_sends_total", "Provider requests to send an alert, by channel and outcome "
                      "(sent, temporary_error, permanent_error, crashed).", ["channel", "outcome"])
PROVIDER_LATENCY = Histogram("emergency_provider_request_seconds", "Time one provider request took.",
                             ["channel"], buckets=LATENCY_BUCKETS)
ALERT_RETRIES = Counter("emergency_alert_retries_total", "Alerts put back in the queue after a temporary failure.",
                        ["channel"])
ESCALATIONS = Counter("emergency_escalations_total", "Unacknowledged alerts escalated (a call, the admins told).")
ACK_SECONDS = Histogram("emergency_ack_seconds", "Seconds from a run's first alert to each acknowledgement.",
                        ["mode"], buckets=SECONDS_BUCKETS)
SOCKET_CONNECTIONS = Gauge("emergency_socket_connections", "Live Socket.IO connections to this instance.",
                           multiprocess_mode="livesum")
EVENTS_PUSHED = Counter("emergency_events_pushed_total", "Live events published, by event name.", ["event"])
HTTP_LATENCY = Histogram("emergency_http_request_seconds", "HTTP request latency by route and status.",
                         ["method", "route", "status"], buckets=LATENCY_BUCKETS)
DISPATCHER_PASS = Gauge("emergency_dispatcher_last_pass_timestamp_seconds",
                        "Unix time of the latest dispatcher pass (the 'dispatcher down' alert reads it).",
                        multiprocess_mode="max")


def dispatcher_pass() -> None:
    DISPATCHER_PASS.set(time.time())


def alert_retried(channel: str) -> None:
    ALERT_RETRIES.labels(channel).inc()


def escalated() -> None:
    ESCALATIONS.inc()


def acknowledged(mode: str, seconds: float) -> None:
    ACK_SECONDS.labels(mode).observe(max(0.0, seconds))


def socket_connected() -> None:
    SOCKET_CONNECTIONS.inc()


def socket_disconnected() -> None:
    SOCKET_CONNECTIONS.dec()


def event_pushed(name: str) -> None:
    EVENTS_PUSHED.labels(name).inc()


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_LATENCY.labels(method, route, str(status)).observe(seconds)
