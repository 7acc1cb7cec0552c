"""Serving the metrics: `GET /metrics` on the web app, METRICS_PORT for processes without HTTP."""

from __future__ import annotations

import hmac
import os
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from flask import Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from emergency.errors import NotFound, Unauthorized
from emergency.metrics.collector import DatabaseCollector
from emergency.metrics.instruments import http_request


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _Forward(Collector):
    """This process's own metrics (the default registry), without registering the database gauges there."""

    def collect(self):
        return REGISTRY.collect()


def registry_for(app: Flask) -> CollectorRegistry:
    """What one scrape reads: every process's counters of this instance, plus the database gauges."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward())
    registry.register(DatabaseCollector(app))
    return registry


def render(app: Flask) -> bytes:
    return generate_latest(registry_for(app))


def token_ok(expected: str, authorization: str | None) -> bool:
    """Constant-time check of `Authorization: Bearer <expected>`; no token configured means no access."""
    if not expected or not (authorization or "").startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[7:].encode(), expected.encode())


def init_app(app: Flask) -> None:
    """`GET /metrics` (behind METRICS_TOKEN) and the timing of every HTTP request."""

    @app.get("/metrics")
    def metrics():
        token = app.config.get("METRICS_TOKEN", "")
        if not token:
            raise NotFound("Metrics are off: set METRICS_TOKEN to serve /metrics.")
        if not token_ok(token, request.headers.get("Authorization")):
            raise Unauthorized("Send Authorization: Bearer <METRICS_TOKEN> to read /metrics.")
        return Response(render(app), mimetype=CONTENT_TYPE_LATEST)

    @app.before_request
    def _start_timer():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("metrics_started", None)
        if started is not None:
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            http_request(request.method, route, response.status_code, time.perf_counter() - started)
        return response


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # a scrape every 15 s would fill the log
        pass


def serve_metrics(app: Flask, port: int, host: str = "0.0.0.0"):
    """Serve the metrics (same token) on `port` from a daemon thread; returns the server."""
    token = app.config.get("METRICS_TOKEN", "")

    def wsgi(environ, start_response):
        if not token_ok(token, environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Send Authorization: Bearer <METRICS_TOKEN>.\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [render(app)]

    server = make_server(host, port, wsgi, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server

