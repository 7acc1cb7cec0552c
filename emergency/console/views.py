"""The web console: a phone-first app shell served at `/`, built only on the public API and Socket.IO."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"

blp = Blueprint("console", __name__, static_folder=None)

# The console needs nothing from other origins: no inline script, no eval, no framing.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "connect-src 'self' ws: wss:",
    "worker-src 'self'",
    "manifest-src 'self'",
    "frame-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


@cache
def shell_version() -> str:
    """A digest of every static file: a new release changes sw.js, so phones replace their cached shell."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@blp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


@blp.get("/")
@blp.get("/app")
@blp.get("/app/")
def shell():
    """The single page; screens are routed by the URL fragment."""
    response = send_from_directory(STATIC, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/console/<path:filename>")
def asset(filename: str):
    """JS modules, CSS, icons and the vendored Socket.IO client."""
    response = send_from_directory(STATIC, filename, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/r/<int:run_id>")
def run_link(run_id: int):
    """The short link in staff texts: opens the run in the console, which asks for a login if there is none."""
    return redirect(f"/#/run/{run_id}", code=302)


@blp.get("/sw.js")
def service_worker():
    """The service worker, at the root so its scope covers `/` and `/app`."""
    body = (STATIC / "sw.js").read_text(encoding="utf-8").replace("__SHELL_VERSION__", shell_version())
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@blp.get("/manifest.webmanifest")
def manifest():
    response = send_from_directory(STATIC, "manifest.webmanifest", mimetype="application/manifest+json", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blp.get("/favicon.ico")
def favicon():
    return redirect("/console/icon.svg", code=308)
