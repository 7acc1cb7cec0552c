"""The demo: load the Port Chester example district into an empty database and print logins."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from emergency.accounts.models import Account
from emergency.accounts.service import find_owner, set_password
from emergency.directory.csv_io import import_directory
from emergency.directory.models import School
from emergency.roster.oneroster import import_roster
from emergency.roster.schedules import import_schedules

DEMO_DIR = Path(__file__).resolve().parent.parent / "examples" / "demo-district"
DEMO_PASSWORD = "demo-password"
# (what they can do, email): one login per kind of user a demo walks through.
DEMO_LOGINS = (
    ("district admin", "marisol.gutierrez@pcsd.example.org"),
    ("principal, Port Chester Middle School", "thomas.oneill@pcsd.example.org"),
    ("teacher, Port Chester Middle School, room 204", "zoe.obrien-nunez@pcsd.example.org"),
    ("police partner", "anthony.russo@pcpd.example.org"),
)


def ensure_demo(session: Session, app: Flask) -> list[str]:
    """Load the demo district if there are no schools yet, set the demo passwords, return lines to print."""
    loaded = ""
    if not session.scalar(select(func.count()).select_from(School)):
        report = import_directory(session, DEMO_DIR, region=app.config.get("DEFAULT_REGION", "US"))
        loaded = "Loaded the demo district (" + ", ".join(f"{n} {kind}" for kind, n in report.created.items()) + "). "
        # The fictional student roster and the middle school's bell schedule (docs/roster.md).
        import_schedules(session, DEMO_DIR / "bell_schedules.csv")
        students = import_roster(session, DEMO_DIR / "oneroster").created["students"]
        loaded += f"Loaded its fictional roster ({students} students). "
    base = app.config.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    lines = [f"{loaded}Demo logins (password for all, unless you changed it: {DEMO_PASSWORD}):"]
    for role, email in DEMO_LOGINS:
        owner = find_owner(session, email)
        if owner is None:
            # The database holds some other directory: never invent accounts in it.
            lines.append(f"  {role}: {email} is not in this directory, so there is no demo login")
            continue
        # Only when there is none: a second start stays fast (argon2 is slow on purpose) and
        # never overwrites a password someone chose.
        account = session.scalar(select(Account).where(Account.email == email))
        if account is None or not account.password_hash:
            set_password(session, email, DEMO_PASSWORD)
        body = shlex.quote(json.dumps({"email": email, "password": DEMO_PASSWORD}))
        lines.append(f"  {role}: {owner.name} <{email}> password {DEMO_PASSWORD}  |  "
                     f"curl -s -X POST {base}/api/v1/auth/login -H 'Content-Type: application/json' -d {body}")
    return lines
