"""Logging: plain text for a developer, one JSON object per line for production (LOG_FORMAT=json).

Each record carries what is known of the emergency it concerns: `request_id`, `run_id`, `alert_id`
and `school_id`, kept in context variables (per thread, per greenlet) and set by the request hooks
below, by `timeline.record` for the run being changed, and by the dispatcher for the alert being
sent. Grepping one run's id through the web and worker logs then tells its whole story.

In production (ENV=production) every phone number in a log line is masked to its last four digits
by the same `mask_phone` the API uses. Student names never reach a log call in the first place.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

from flask import Flask, g, request
from pythonjsonlogger.json import JsonFormatter

from emergency.phones import mask_phone

FIELDS = ("request_id", "run_id", "alert_id", "school_id")
_context = {name: contextvars.ContextVar(f"emergency_{name}", default=None) for name in FIELDS}
PHONE = re.compile(r"\+\d{8,15}\b")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = ["asctime", "levelname", "name", "message"]
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}

log = logging.getLogger("emergency.http")


def bind(**fields) -> None:
    """Add fields to the current context (None leaves a field unset)."""
    for name, value in fields.items():
        _context[name].set(value)


def set_context(**fields) -> None:
    """Replace the whole context: the given fields, every other one unset."""
    for name in FIELDS:
        _context[name].set(fields.get(name))


def bind_run(run) -> None:
    """The run (and its school) a piece of work is about."""
    bind(run_id=run.id, school_id=run.school_id)


def current() -> dict:
    return {name: var.get() for name, var in _context.items() if var.get() is not None}


def mask_phones(text: str) -> str:
    return PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class ContextFilter(logging.Filter):
    """Copies the context fields onto each record (a field already on the record wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, _context[name].get())
        return True


class _Masking:
    mask = False

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return mask_phones(text) if self.mask else text


class TextFormatter(_Masking, logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = " ".join(f"{name}={getattr(record, name)}" for name in FIELDS
                         if getattr(record, name, None) is not None)
        return f"{text} [{known}]" if known and "\n" not in text else text


class JsonLineFormatter(_Masking, JsonFormatter):
    """time, level, logger, message, the context fields that are known, and any `extra=`."""

    def __init__(self):
        super().__init__(JSON_FIELDS, rename_fields=RENAMED, timestamp=False)
        self.converter = time.gmtime

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"

    def process_log_record(self, log_record: dict) -> dict:
        return {k: v for k, v in log_record.items() if v is not None or k not in FIELDS}


def formatter(fmt: str, mask: bool) -> logging.Formatter:
    made = JsonLineFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT)
    made.mask = mask
    return made


class _Handler(logging.StreamHandler):
    """The one handler we install on the root logger (recognised, so it is never installed twice)."""


def configure_logging(level: str, fmt: str = "text", mask: bool = False) -> None:
    """One handler on the root logger, in `fmt` (text or json); `emergency.*` at `level`."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    if not ours and not root.handlers:
        ours = [_Handler()]
        root.addHandler(ours[0])
    for handler in ours:
        handler.setFormatter(formatter(fmt, mask))
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
    logging.getLogger("emergency").setLevel(level.upper())


def gunicorn_logconfig(fmt: str, mask: bool) -> dict:
    """gunicorn's own loggers (gunicorn.error, gunicorn.access) in the same format, for gunicorn.conf.py."""
    factory = "emergency.logs.json_formatter" if fmt == "json" else "emergency.logs.text_formatter"
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"default": {"()": factory, "mask": mask}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default",
                                 "filters": ["context"], "stream": "ext://sys.stderr"}},
        "filters": {"context": {"()": ContextFilter}},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False}},
        "root": {"level": "WARNING", "handlers": ["console"]},
    }


def json_formatter(mask: bool = False) -> logging.Formatter:
    return formatter("json", mask)


def text_formatter(mask: bool = False) -> logging.Formatter:
    return formatter("text", mask)


def init_app(app: Flask) -> None:
    """A request id for every request (X-Request-ID in, and back out), and the ids its URL names."""
    access_level = logging.INFO if app.config.get("LOG_FORMAT") == "json" else logging.DEBUG

    @app.before_request
    def _bind_request():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        args = request.view_args or {}
        alert = args.get("alert_id") or request.args.get("alert", type=int)
        set_context(request_id=g.request_id, run_id=args.get("run_id"), school_id=args.get("school_id"),
                    alert_id=alert)

    @app.after_request
    def _access_log(response):
        response.headers.setdefault("X-Request-ID", g.get("request_id", ""))
        if log.isEnabledFor(access_level) and "request_started" in g:
            log.log(access_level, "%s %s %s %.0fms", request.method, request.path, response.status_code,
                    (time.perf_counter() - g.request_started) * 1000)
        return response

    @app.teardown_request
    def _unbind(_exc=None):
        set_context()
