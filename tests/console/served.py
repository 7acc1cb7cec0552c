"""A real, served instance of the app (`emergency serve --demo`) for browser tests and screenshots."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE = {"width": 360, "height": 780}
PASSWORD = "demo-password"
PRINCIPAL = "thomas.oneill@pcsd.example.org"  # Port Chester Middle School
TEACHER = "zoe.obrien-nunez@pcsd.example.org"  # Port Chester Middle School, room 204
PARTNER = "anthony.russo@pcpd.example.org"
DISTRICT_ADMIN = "marisol.gutierrez@pcsd.example.org"


def browser_missing() -> str | None:
    """Why browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"chromium is not installed at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The base URL of a running demo instance, with a small API client for assertions."""

    def __init__(self, base: str, log: Path, database_url: str = "") -> None:
        self.base = base
        self.log = log
        self.database_url = database_url

    def set_password(self, email: str) -> None:
        """Give a demo person without a printed login the demo password (as `emergency users set-password`)."""
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from emergency.accounts.service import set_password

        engine = create_engine(self.database_url)
        with Session(engine) as session:
            set_password(session, email, PASSWORD)
            session.commit()
        engine.dispose()

    def token(self, email: str) -> str:
        response = requests.post(f"{self.base}/api/v1/auth/login", json={"email": email, "password": PASSWORD},
                                 timeout=10)
        response.raise_for_status()
        return response.json()["token"]

    def get(self, email: str, path: str, **params) -> dict:
        response = requests.get(f"{self.base}/api/v1{path}", params=params, timeout=10,
                                headers={"Authorization": f"Bearer {self.token(email)}"})
        response.raise_for_status()
        return response.json()

    def post(self, email: str, path: str, body: dict, **headers) -> dict:
        response = requests.post(f"{self.base}/api/v1{path}", json=body, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token(email)}", **headers})
        response.raise_for_status()
        return response.json()


@contextmanager
def serve_demo():
    """Run `emergency serve --demo` on a free port with its own database; yields a Served."""
    with tempfile.TemporaryDirectory(prefix="emergency-console-") as tmp:
        port = free_port()
        database_url = f"sqlite:///{Path(tmp) / 'demo.sqlite3'}"
        env = dict(os.environ, INSTANCE_PATH=str(Path(tmp) / "instance"), DATABASE_URL=database_url,
                   DISPATCHER="thread",
                   ALERT_PROVIDER="console", ENV="demo", PLAYBOOKS_DIR=str(REPO / "playbooks"),
                   COMPLIANCE_RULES=str(REPO / "rules" / "new-york.yaml"), LOG_LEVEL="WARNING",
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        for name in ("REDIS_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "SECRET_KEY"):
            env.pop(name, None)
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", "from emergency.cli import main; main()", "serve", "--demo",
                 "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            base = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 180  # a loaded CI machine: the demo loads, then gunicorn boots
                while True:
                    if process.poll() is not None:
                        raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()[-4000:]}")
                    try:
                        if requests.get(f"{base}/healthz", timeout=1).ok:
                            break
                    except requests.RequestException:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start:\n{log.read_text()[-4000:]}")
                    time.sleep(0.2)
                yield Served(base, log, database_url)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
