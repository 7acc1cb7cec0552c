"""Shared pieces of the HTTP layer: the OpenAPI object, the caller, pagination."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask_smorest import Api
from werkzeug.routing import IntegerConverter

from emergency.accounts.service import authenticate
from emergency.db import db
from emergency.directory.principal import Principal
from emergency.errors import Forbidden, ValidationFailed


class ErrorSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "machine-readable error code, e.g. not_found"})
    status = ma.fields.Integer(metadata={"description": "the HTTP status"})
    message = ma.fields.String(metadata={"description": "what was wrong, for a person"})
    errors = ma.fields.Dict(metadata={"description": "per-field messages, for validation errors"})


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` capped at what an INTEGER column holds: a huge id is a 404, not a PostgreSQL error."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class EmergencyApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *, spec_kwargs=None):
        app.url_map.converters["int"] = DatabaseIdConverter
        super().init_app(app, spec_kwargs=spec_kwargs)


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
    return key.strip() if key else None


def page_meta(total: int, page: int, per_page: int) -> dict:
    return {"total": total, "page": page, "per_page": per_page,
            "pages": (total + per_page - 1) // per_page if per_page else 0}
