"""deploy/nginx.conf as shipped, in front of two served instances sharing Redis: a start reaches phones on both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio as socketio_client

from tests.served import REPO, ServedProcess, free_port

REDIS_URL = os.environ.get("TEST_REDIS_URL")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL to run the multi-instance tests"),
    pytest.mark.skipif(not NGINX, reason="nginx is not installed (apt-get install nginx-light); .ci/run installs it"),
]


def _config(tmp: Path, port: int, one: int, two: int) -> Path:
    """The shipped file with the test's ports and log path: each swapped line must exist."""
    text = (REPO / "deploy" / "nginx.conf").read_text()
    swaps = [("listen 8080;", f"listen 127.0.0.1:{port};"), ("127.0.0.1:5001", f"127.0.0.1:{one}"),
             ("127.0.0.1:5002", f"127.0.0.1:{two}"),
             ("/var/log/nginx/emergency.access.log", str(tmp / "access.log"))]
    for old, new in swaps:
        assert old in text, f"deploy/nginx.conf no longer has {old!r}"
        text = text.replace(old, new)
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


class Nginx:
    def __init__(self, config: Path, port: int):
        self.config, self.port, self.process = config, port, None

    def __enter__(self):
        prefix = self.config.parent
        directives = f"daemon off; pid {prefix / 'nginx.pid'}; error_log {prefix / 'error.log'} warn;"
        test = subprocess.run([NGINX, "-t", "-q", "-p", str(prefix), "-c", str(self.config), "-g", directives],
                              capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        self.process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(self.config), "-g", directives],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)


def _phone(url, token, transport, got, arrived):
    sio = socketio_client.Client(reconnection=False)

    def on_started(data):
        got.append(data)
        arrived.set()

    sio.on("run.started", on_started)
    sio.connect(url, auth={"token": token}, transports=[transport], wait_timeout=10)
    return sio


def test_a_start_through_the_load_balancer_reaches_phones_on_both_instances(app, session, database_url, tmp_path,
                                                                            make_school, make_person, login):
    school = make_school()
    principal = login(make_person("school_admin", [school]))
    teacher = login(make_person("teacher", [school]))["Authorization"][7:]
    session.commit()
    env = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "ENV": "test", "DISPATCHER": "off",
           "SECRET_KEY": "test-secret-key-0123456789", "LOG_LEVEL": "WARNING"}
    port = free_port()
    with ServedProcess(env) as one, ServedProcess(env) as two, \
            Nginx(_config(tmp_path, port, one.port, two.port), port):
        url = f"http://127.0.0.1:{port}"
        phones, boxes = [], []
        try:
            # Four websocket phones (spread over both instances) and one on the long-polling fallback (sticky).
            for transport in ["websocket"] * 4 + ["polling"]:
                box, arrived = [], threading.Event()
                phones.append(_phone(url, teacher, transport, box, arrived))
                boxes.append((box, arrived))
            started = requests.post(url + "/api/v1/runs", headers=principal, timeout=10,
                                    json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
            assert started.status_code == 201, started.text
            for box, arrived in boxes:
                assert arrived.wait(15), "a phone behind the load balancer missed run.started"
                assert box[0]["run_id"] == started.json()["id"]
        finally:
            for sio in phones:
                sio.disconnect()
        time.sleep(0.5)  # nginx writes a websocket's log line when it closes
    log = (tmp_path / "access.log").read_text()
    upgraded = re.findall(r'"GET /socket\.io/\?[^"]*transport=websocket[^"]*" 101 127\.0\.0\.1:(\d+)', log)
    assert {int(p) for p in upgraded} == {one.port, two.port}, log
