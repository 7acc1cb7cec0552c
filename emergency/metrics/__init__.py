"""Prometheus metrics: what an operator needs to know at 10:42 on a lockdown morning.

Two kinds:
- gauges read from the database at scrape time (outbox depth by channel and status, age of the
  oldest due alert, figures of the active runs) and from this process (database pool use), by
  `DatabaseCollector`: any instance answers them the same way, so they survive restarts;
- counters and histograms bumped at a few hook points (sends and provider latency, through
  `alerts.providers.instrumented`), retries, escalations, acknowledgements, live connections, events pushed,
  HTTP requests).

With PROMETHEUS_MULTIPROC_DIR set (before the process starts: prometheus-client reads it at import),
every process of one instance writes its counters to files there and `/metrics` adds them up, so
gunicorn may run several workers. Give each instance (container) its own directory and empty it
at start; the image's entrypoint does.

`GET /metrics` answers only with `Authorization: Bearer <METRICS_TOKEN>`; without METRICS_TOKEN it is
off. Processes that serve no HTTP (`emergency worker`) serve the same text on METRICS_PORT.
"""
