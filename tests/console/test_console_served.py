"""The console's shell, assets and headers, without a browser."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "emergency" / "console" / "static"


def test_shell_is_served_at_root_and_app_with_a_strict_policy(client):
    for path in ("/", "/app"):
        response = client.get(path)
        assert response.status_code == 200
        assert b'<main id="screen"' in response.data
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api_responses_do_not_get_the_console_headers(client):
    assert "Content-Security-Policy" not in client.get("/healthz").headers


def test_service_worker_is_served_at_the_root_with_the_release_version(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    body = response.get_data(as_text=True)
    assert "__SHELL_VERSION__" not in body
    assert re.search(r'const VERSION = "[0-9a-f]{16}"', body)


def test_every_shell_file_the_service_worker_caches_exists(client):
    body = client.get("/sw.js").get_data(as_text=True)
    shell = re.findall(r'"(/[^"]*)",?\n', body.split("const SHELL = [", 1)[1].split("];", 1)[0])
    assert "/console/js/main.js" in shell
    for path in shell:
        assert client.get(path).status_code == 200, path
    modules = {f"/console/{p.relative_to(STATIC).as_posix()}" for p in (STATIC / "js").rglob("*.js")}
    assert modules <= set(shell), "a JS module is missing from the service worker's shell list"


def test_vendored_socketio_client_is_present_with_its_licence(client):
    response = client.get("/console/vendor/socket.io.min.js")
    assert response.status_code == 200
    assert b"Socket.IO v4." in response.data[:200]
    assert (STATIC / "vendor" / "socket.io.LICENSE").is_file()
    assert "socket.io-client 4." in (STATIC / "vendor" / "VERSION").read_text()


def test_manifest_and_unknown_assets(client):
    assert client.get("/manifest.webmanifest").get_json()["start_url"] == "/"
    assert client.get("/console/nope.js").status_code == 404


def test_console_code_never_builds_html_from_strings_or_evaluates_code():
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    for path in (STATIC / "js").rglob("*.js"):
        code = path.read_text()
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert forbidden not in code, f"{forbidden} in {path.name}"
