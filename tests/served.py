"""Serving an app for end-to-end tests: in a thread (werkzeug) or as a gunicorn subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from werkzeug.serving import make_server

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedThread:
    """The app served by werkzeug in a daemon thread (Socket.IO over long-polling and websocket)."""

    def __init__(self, app):
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


class ServedProcess:
    """`gunicorn -k gevent emergency.wsgi:app` (as in the Procfile) in a subprocess, with its own environment."""

    def __init__(self, env: dict, *, args: list[str] | None = None, log_path: Path | None = None,
                 start_timeout: float = 30.0):
        self.log_path = log_path  # where its output goes (default: a pipe read only if it fails to start)
        self.start_timeout = start_timeout  # seconds until /healthz answers (more on a loaded machine)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.args = args or [sys.executable, "-m", "gunicorn", "-w", "1", "-k", "gevent", "--worker-connections",
                             "1000", "-b", f"127.0.0.1:{self.port}", "emergency.wsgi:app"]
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        output = open(self.log_path, "w") if self.log_path else subprocess.PIPE  # noqa: SIM115 (the process owns it)
        self.process = subprocess.Popen(self.args, env=self.env, cwd=REPO, stdout=output,
                                        stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = self.log_path.read_text() if self.log_path else self.process.stdout.read()
                raise RuntimeError(f"server exited: {text}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"server did not start in {self.start_timeout:g} s")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


class WorkerProcess:
    """`python -m emergency worker` in a subprocess, stopped with SIGTERM."""

    def __init__(self, env: dict, *, log_path: Path | None = None):
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        output = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "emergency", "worker"], env=self.env, cwd=REPO,
                                        stdout=output, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
