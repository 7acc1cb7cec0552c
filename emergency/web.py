"""Shared pieces of the HTTP layer: the OpenAPI object, the caller, pagination, the input guard."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import flask_smorest
import marshmallow as ma
import swagger_ui_bundle
from flask import Blueprint, Response, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SessionInterface
from flask_smorest import Api
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.routing import IntegerConverter

from emergency.accounts.service import authenticate
from emergency.db import MAX_INTEGER, MIN_INTEGER, db
from emergency.directory.principal import Principal
from emergency.errors import Forbidden, ValidationFailed


class ErrorSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "machine-readable error code, e.g. not_found"})
    status = ma.fields.Integer(metadata={"description": "the HTTP status"})
    message = ma.fields.String(metadata={"description": "what was wrong, for a person"})
    errors = ma.fields.Dict(metadata={"description": "per-field messages, for validation errors"})
    active_run_id = ma.fields.Integer(allow_none=True,
                                      metadata={"description": "409 on a start: the run already active"})
    run_id = ma.fields.Integer(allow_none=True, metadata={"description": "409: the run the conflict is about"})
    manual_drill_id = ma.fields.Integer(allow_none=True,
                                        metadata={"description": "409: the drill record already on file"})
    state = ma.fields.String(metadata={"description": "409 on an ended run: its state"})
    retry_after = ma.fields.Integer(metadata={"description": "429: seconds to wait (also the Retry-After header)"})


# ------------------------------------------------------------------------------------------ the input guard

MAX_JSON_DEPTH = 32
# Dates a person can mean: anything outside breaks time-zone arithmetic or the database, not a drill record.
EARLIEST, LATEST = date(1900, 1, 1), date(9999, 1, 1)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates: no database column takes them


def decode_json(data: str | bytes) -> Any:
    """json.loads, refusing documents nested deeper than MAX_JSON_DEPTH (ValueError, like any bad JSON)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested more than {MAX_JSON_DEPTH} levels deep")
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's request.get_json with the depth limit: deep nesting is bad JSON (400), not a RecursionError."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return decode_json(s)


def _problems(value: Any, path: str = "") -> dict[str, list[str]]:
    """Values no column can hold: integers beyond 32 bits, NUL or lone surrogates, absurd dates."""
    found: dict[str, list[str]] = {}
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        problem = None
        if isinstance(item, dict):
            stack.extend((f"{where}.{key}" if where else str(key), child) for key, child in item.items())
            stack.extend((where or "_body", key) for key in item if isinstance(key, str))
        elif isinstance(item, list | tuple | set):
            stack.extend((f"{where}.{i}" if where else str(i), child) for i, child in enumerate(item))
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            problem = "must not contain NUL characters or unpaired surrogates"
        elif isinstance(item, int) and not isinstance(item, bool) and not MIN_INTEGER <= item <= MAX_INTEGER:
            problem = f"must be between {MIN_INTEGER} and {MAX_INTEGER}"
        elif isinstance(item, date) and not EARLIEST <= (item.date() if isinstance(item, datetime) else item) < LATEST:
            problem = f"must be between {EARLIEST.year} and {LATEST.year - 1}"
        if problem:
            found.setdefault(where or "_body", []).append(problem)
    return found


def refuse_unstorable(value: Any, path: str = "") -> None:
    """Raise 422 when `value` holds anything no column can store (see _problems)."""
    found = _problems(value, path)
    if found:
        message = "The request is not valid: " + "; ".join(f"{field}: {' '.join(m)}"
                                                          for field, m in sorted(found.items()))
        raise ValidationFailed(message, errors=found)


# Endpoints anyone may call; every other API endpoint checks the caller before reading the request.
# A push notification's receipt proves its recipient without a login (emergency/push/api.py).
PUBLIC_ENDPOINTS = {"auth.Login", "push.Received", "push.AckFromNotification"}


class GuardedParser(FlaskParser):
    """webargs' parser with the checks every endpoint needs, in one place.

    The caller is authenticated before the arguments are read (an anonymous request is a 401, not a
    422 about its body), bodies nested too deep are refused, and nothing that a column cannot hold
    reaches a service: integers are bounded to 32 bits, strings hold no NUL, dates are plausible.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type, ma.Schema] = {}

    def _raw_load_json(self, req) -> Any:
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        try:
            return decode_json(data)
        except UnicodeDecodeError as exc:
            self._handle_invalid_json_error(exc, req)
        except json.JSONDecodeError as exc:
            self._handle_invalid_json_error(exc, req)
        except ValueError as exc:
            raise ValidationFailed(f"The request body is {exc}.", errors={"_body": [str(exc)]}) from None

    def _get_schema(self, argmap, req) -> ma.Schema:
        # webargs builds a new instance of a schema class on every request: a third of a millisecond
        # of each check-in. One instance per class serves them all, as flask-smorest's response
        # schemas do (marshmallow 4 schemas keep no per-load state).
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)

    def parse(self, argmap, req=None, **kwargs) -> Any:
        if request.endpoint not in PUBLIC_ENDPOINTS:
            current_principal()
        parsed = super().parse(argmap, req, **kwargs)
        refuse_unstorable(parsed)
        return parsed


# flask-smorest's documented hook for the parser; set on its Blueprint so every domain's blueprint uses it.
flask_smorest.Blueprint.ARGUMENTS_PARSER = GuardedParser()


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` capped at what an INTEGER column holds: a huge id is a 404, not a PostgreSQL error."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_INTEGER)
        super().__init__(map, *args, **kwargs)


class EmergencyApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *, spec_kwargs=None):
        app.url_map.converters["int"] = DatabaseIdConverter
        super().init_app(app, spec_kwargs=spec_kwargs)


# /api/docs loads Swagger UI from here, from the swagger-ui-bundle package: no script from a CDN.
SWAGGER_UI_ASSETS = "/api/docs/assets/"
docs_assets = Blueprint("docs_assets", __name__)


@docs_assets.get(SWAGGER_UI_ASSETS + "<path:filename>")
def swagger_ui_asset(filename: str):
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)


def api_headers(response: Response) -> Response:
    """API answers carry student names and phones: no cache may keep them, no browser may sniff them."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.path.startswith("/api/") and not request.path.startswith(SWAGGER_UI_ASSETS):
        response.headers["Cache-Control"] = "no-store"
    return response


_PRINCIPAL = "emergency.principal"


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def current_principal() -> Principal:
    """The authenticated caller, or a 401 in the standard error shape."""
    # Cached on the request, not on `g`: an app context can outlive one request (tests hold one
    # open, CLI and background code reuse theirs), and a caller must never carry over to the next.
    if _PRINCIPAL not in request.environ:
        request.environ[_PRINCIPAL] = authenticate(db.session, bearer_token())
    return request.environ[_PRINCIPAL]


def staff_principal() -> Principal:
    """The caller, who must be staff (partners are read-only)."""
    principal = current_principal()
    if principal.is_partner:
        raise Forbidden("Partners have read-only access.")
    return principal


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header, checked (a retried request carries the same key)."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key.strip()) <= 200):
        raise ValidationFailed("The Idempotency-Key header must have 1 to 200 characters.",
                               errors={"Idempotency-Key": ["1 to 200 characters"]})
    if key is not None:
        refuse_unstorable(key, "Idempotency-Key")
    return key.strip() if key else None


def page_meta(total: int, page: int, per_page: int) -> dict:
    return {"total": total, "page": page, "per_page": per_page,
            "pages": (total + per_page - 1) // per_page if per_page else 0}


class NoCookieSessions(SessionInterface):
    """Every caller authenticates by bearer token: there is no cookie session to open or to save.

    Flask's default opens a signed-cookie session for every request and every Socket.IO event (it
    builds a signing serializer each time, before it even looks for the cookie). Here `session` is
    Flask's null session: reading it gives nothing, writing to it raises.
    """

    def open_session(self, app, request):
        return None  # Flask then uses its null session

    def save_session(self, app, session, response) -> None:
        return None
