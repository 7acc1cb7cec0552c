"""Shared pieces of the HTTP layer: the OpenAPI object, the caller, pagination."""

from __future__ import annotations

import marshmallow as ma
from flask import g, request
from flask_smorest import Api

from emergency.accounts.principal import Principal
from emergency.accounts.service import authenticate
from emergency.db import db
from emergency.errors import Forbidden


class ErrorSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "machine-readable error code, e.g. not_found"})
    status = ma.fields.Integer(metadata={"description": "the HTTP status"})
    message = ma.fields.String(metadata={"description": "what was wrong, for a person"})
    errors = ma.fields.Dict(metadata={"description": "per-field messages, for validation errors"})


class EmergencyApi(Api):
    ERROR_SCHEMA = ErrorSchema


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def current_principal() -> Principal:
    """The authenticated caller, or a 401 in the standard error shape."""
    if "principal" not in g:
        g.principal = authenticate(db.session, bearer_token())
    return g.principal


def staff_principal() -> Principal:
    """The caller, who must be staff (partners are read-only)."""
    principal = current_principal()
    if principal.is_partner:
        raise Forbidden("Partners have read-only access.")
    return principal


class PageArgs(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1))
    per_page = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


def page_meta(total: int, page: int, per_page: int) -> dict:
    return {"total": total, "page": page, "per_page": per_page,
            "pages": (total + per_page - 1) // per_page if per_page else 0}
