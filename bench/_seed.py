"""What the check-in benchmarks share: a seeded school, the Procfile's processes, timing helpers.

bench/checkin_burst.py (check-ins with watching phones) and bench/roster_burst.py (check-ins by
student while the principal reads the school's list) both build the same school the same way:
N classrooms, N teachers each with a bearer token written straight to the database (1,000 argon2
logins would measure the password hasher), a principal with a password, and in roster mode the
students in one homeroom class per room. Both serve the app as the Procfile says.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emergency.accounts.models import Account, AuthToken  # noqa: E402
from emergency.accounts.service import set_password  # noqa: E402
from emergency.directory.models import Person, Room, School, person_schools  # noqa: E402
from emergency.migrate import upgrade  # noqa: E402
from emergency.roster.models import Enrollment, RosterClass, Student  # noqa: E402
from emergency.timeutil import utcnow  # noqa: E402

PASSWORD = "bench password 123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(database_url: str, reset: bool) -> tuple[str, Path]:
    """The database URL (default: a temporary SQLite file), migrated; PostgreSQL emptied first with `reset`."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    url = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if reset and url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    return url, workdir


def seed(url: str, rooms: int, tag: str, students: int = 0) -> tuple[int, str, list[str]]:
    """Create the school, its classrooms, teachers with tokens and a principal; returns (school, email, tokens)."""
    engine = create_engine(url)
    now = utcnow()
    tokens = [secrets.token_urlsafe(24) for _ in range(rooms)]
    with Session(engine) as session:
        school = School(code=f"B{tag}", name=f"Bench School {tag}", address="1 Bench St")
        session.add(school)
        session.flush()
        session.execute(insert(Room), [{"school_id": school.id, "number": f"{n:04d}", "name": "", "floor": "1",
                                        "kind": "classroom", "capacity": 25} for n in range(1, rooms + 1)])
        room_ids = list(session.scalars(select(Room.id).where(Room.school_id == school.id).order_by(Room.number)))
        base = int(tag[-6:], 16) % 10_000_000
        session.execute(insert(Person), [
            {"name": f"Teacher {n}", "role": "teacher", "email": f"t{n}.{tag}@bench.example.org",
             "mobile": f"+1{(base * 1000 + n) % 10**10:010d}", "home_room_id": room_id, "active": True}
            for n, room_id in enumerate(room_ids, start=1)])
        people = list(session.scalars(select(Person.id).where(Person.email.like(f"%.{tag}@bench.example.org"))
                                      .order_by(Person.id)))
        principal = Person(name="Bench Principal", role="school_admin", email=f"principal.{tag}@bench.example.org",
                           active=True)
        session.add(principal)
        session.flush()
        session.execute(insert(person_schools), [{"person_id": p, "school_id": school.id}
                                                 for p in [*people, principal.id]])
        session.execute(insert(Account), [{"email": f"t{n}.{tag}@bench.example.org", "person_id": p,
                                           "created_at": now}
                                          for n, p in enumerate(people, start=1)])
        accounts = list(session.scalars(select(Account.id).where(Account.person_id.in_(people))
                                        .order_by(Account.person_id)))
        session.execute(insert(AuthToken), [{"account_id": a, "token_hash": hashlib.sha256(t.encode()).hexdigest(),
                                             "created_at": now, "expires_at": now + timedelta(hours=2)}
                                            for a, t in zip(accounts, tokens, strict=True)])
        if students:
            _seed_roster(session, school.id, tag, room_ids, people, students, now)
        session.commit()
        set_password(session, principal.email, PASSWORD)
        session.commit()
        school_id, email = school.id, principal.email
    engine.dispose()
    return school_id, email, tokens


def _seed_roster(session, school_id: int, tag: str, room_ids: list[int], teachers: list[int], students: int,
                 now) -> None:
    """`students` students spread over one homeroom class per room, each class with its teacher."""
    session.execute(insert(RosterClass), [
        {"sourced_id": f"hr-{tag}-{n}", "school_id": school_id, "title": f"Homeroom {n}", "homeroom": True,
         "room_id": room_id, "periods": [], "active": True, "updated_at": now} for n, room_id in enumerate(room_ids)])
    classes = list(session.scalars(select(RosterClass.id).where(RosterClass.school_id == school_id)
                                   .order_by(RosterClass.id)))
    session.execute(insert(Student), [
        {"sourced_id": f"s-{tag}-{n}", "school_id": school_id, "given_name": f"Student{n}", "family_name": f"B{n}",
         "identifier": str(n), "grade": "07", "active": True, "updated_at": now} for n in range(students)])
    ids = list(session.scalars(select(Student.id).where(Student.school_id == school_id).order_by(Student.id)))
    rows = [{"sourced_id": f"e-{tag}-t{n}", "class_id": c, "role": "teacher", "person_id": p, "student_id": None,
             "active": True, "updated_at": now} for n, (c, p) in enumerate(zip(classes, teachers, strict=True))]
    rows += [{"sourced_id": f"e-{tag}-s{n}", "class_id": classes[n % len(classes)], "role": "student",
              "student_id": sid, "person_id": None, "active": True, "updated_at": now} for n, sid in enumerate(ids)]
    session.execute(insert(Enrollment), rows)


def procfile_command(process: str, env: dict) -> list[str]:
    """The Procfile's command for `process` (web, worker), with ${VAR:-default} filled from `env`."""
    for line in (REPO / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            filled = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m.group(1)) or m.group(2) or "",
                            command)
            words = shlex.split(filled)
            words[0] = str(Path(sys.executable).parent / words[0])  # the virtualenv's gunicorn / emergency
            return words
    raise SystemExit(f"the Procfile has no {process}: line")


def serve(url: str, port: int, workdir: Path, *, server: str = "procfile",
          dispatcher: str = "in-process") -> list[subprocess.Popen]:
    """Start the Procfile's web process (or `emergency serve`), and its worker with dispatcher="worker".

    dispatcher: "in-process" sends the drill's alerts (console provider) from the web process,
    "worker" from the Procfile's worker, "off" not at all. Returns [web, worker?].
    """
    env = dict(os.environ, DATABASE_URL=url, ENV="development", LOG_LEVEL="WARNING", PORT=str(port),
               DISPATCHER="thread" if dispatcher == "in-process" else "off",
               PLAYBOOKS_DIR=str(REPO / "playbooks"), COMPLIANCE_RULES=str(REPO / "rules" / "new-york.yaml"),
               INSTANCE_PATH=str(workdir / "instance"), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    if server == "procfile":
        command = procfile_command("web", env)
    else:
        command = [str(Path(sys.executable).parent / "emergency"), "serve", "--port", str(port)]
    print("web:", " ".join(command[1:]), flush=True)
    processes = [subprocess.Popen(command, env=env, cwd=REPO, stdout=open(workdir / "web.log", "w"),  # noqa: SIM115
                                  stderr=subprocess.STDOUT)]
    print(f"web pid: {processes[0].pid}", flush=True)
    if dispatcher == "worker":
        worker = procfile_command("worker", env)
        processes.append(subprocess.Popen(worker, env=env, cwd=REPO, stdout=open(workdir / "worker.log", "w"),  # noqa: SIM115
                                          stderr=subprocess.STDOUT))
    return processes


def stop(processes: list[subprocess.Popen]) -> None:
    """Terminate the served processes, killing what does not stop within 10 s."""
    for process in processes:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of a process and (unless told not to) its children (gunicorn's master and its
    worker), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir() if children else ():
                pids.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def database_cpu_seconds() -> float | None:
    """User + system CPU of this machine's PostgreSQL processes (None if there are none: a remote server)."""
    tick, total, found = os.sysconf("SC_CLK_TCK"), 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().partition(") ")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if head.endswith("(postgres"):
            fields = rest.split()
            total, found = total + (int(fields[11]) + int(fields[12])) / tick, True
    return total if found else None


def wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in time")


def wait_for_dispatchers(url: str, count: int, deadline: float) -> None:
    """Wait until `count` dispatchers beat on the database: a worker process that is still importing and
    building its app when the measurement starts would be measured starting up, not sending."""
    from emergency.alerts.models import DispatcherHeartbeat

    engine = create_engine(url)
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                beating = connection.execute(select(DispatcherHeartbeat.id).where(
                    DispatcherHeartbeat.seen_at >= utcnow() - timedelta(seconds=30))).all()
            if len(beating) >= count:
                return
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise SystemExit(f"{count} dispatchers did not start in time")


def login(base: str, email: str) -> requests.Session:
    """An HTTP session logged in as `email` (the principal, PASSWORD)."""
    http = requests.Session()
    response = http.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    http.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return http


def start_drill(http: requests.Session, base: str, school_id: int) -> int:
    """Start a lockdown drill at the school; returns the run id."""
    started = http.post(f"{base}/api/v1/runs", json={"school_id": school_id, "playbook": "lockdown",
                                                     "mode": "drill"}, timeout=60)
    started.raise_for_status()
    return started.json()["id"]


def host_speed() -> str:
    """A line to print before a benchmark's figures: how fast this host runs plain Python right now.

    The figures are CPU-bound and the hosts these benchmarks run on vary several-fold from day to day
    (shared cores); a figure is comparable with another only next to this reference.
    """
    timings = []
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(2_000_000):
            total += i
        timings.append(time.process_time() - started)
    return (f"host: {os.cpu_count()} cores; 2M-iteration Python loop {min(timings) * 1000:.0f}-"
            f"{max(timings) * 1000:.0f} ms of CPU (lower is faster)")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
