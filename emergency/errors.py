"""Domain errors and the one JSON error shape every response uses.

Shape: {"code": "conflict", "status": 409, "message": "...", "errors": {field: [..]}}
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


# Seconds a client is told to wait when the database is down; the pool reconnects by itself.
DATABASE_RETRY_AFTER = 5


class DomainError(Exception):
    """Base for errors a service raises and the API turns into a 4xx."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, errors: dict | None = None, extra: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.extra = extra or {}
        self.headers = headers or {}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **kwargs):
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))}, **kwargs)


def _database_unavailable(exc: Exception) -> bool:
    """A lost or refused connection, or a pool with none to give: worth a retry, not a 500."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def error_body(status: int, code: str, message: str, errors: dict | None = None, **extra) -> dict:
    body = {"code": code, "status": status, "message": message}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "validation_failed", 429: "too_many_requests", 500: "internal_error",
}


def _flatten_messages(messages) -> dict:
    """marshmallow nests messages under the location ('json', 'query'); keep the fields."""
    if isinstance(messages, dict) and set(messages) <= {"json", "query", "headers", "form", "files", "path"}:
        merged: dict = {}
        for value in messages.values():
            if isinstance(value, dict):
                merged.update(value)
            else:
                merged["_body"] = value
        return merged
    return messages if isinstance(messages, dict) else {"_schema": messages}


def register_error_handlers(app: Flask) -> None:
    """Every error, ours or Werkzeug's, leaves as the same JSON shape."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        body = error_body(exc.status, exc.code, exc.message, exc.errors, **exc.extra)
        return jsonify(body), exc.status, exc.headers

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.response is not None:  # already answered in the error shape (the login limiter's 429)
            return exc.response
        status = exc.code or 500
        errors = None
        message = exc.description or exc.name
        data = getattr(exc, "data", None)  # flask-smorest / webargs attach parse errors here
        if data and "messages" in data:
            errors = _flatten_messages(data["messages"])
            if "_body" in errors and "JSON" in str(errors["_body"]):
                errors = {"_body": ["The request body is not valid JSON."]}
            message = "The request is not valid: " + "; ".join(
                f"{field}: {' '.join(map(str, m)) if isinstance(m, list) else m}"
                for field, m in sorted(errors.items(), key=lambda kv: str(kv[0])))
            status = 422 if status in (400, 422) else status
        elif status == 400 and "Failed to decode JSON" in str(message):
            message = "The request body is not valid JSON."
        response = jsonify(error_body(status, _HTTP_CODES.get(status, exc.name.lower().replace(" ", "_")),
                                      message, errors))
        response.status_code = status
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if _database_unavailable(exc):
            # One line, not a traceback per request: during an outage every request lands here.
            log.warning("database unavailable: %s: %s", type(exc).__name__, getattr(exc, "orig", None) or exc)
            body = error_body(503, "database_unavailable",
                              "The database is not reachable right now; retry in a few seconds.")
            return jsonify(body), 503, {"Retry-After": str(DATABASE_RETRY_AFTER)}
        log.exception("unhandled error")
        return jsonify(error_body(500, "internal_error", "An unexpected error occurred; it has been logged.")), 500
