"""Benchmark of roster check-ins (the burst with watching phones is bench/checkin_burst.py).

    .venv/bin/python bench/roster_burst.py                       # temporary SQLite database
    .venv/bin/python bench/roster_burst.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

It migrates the database, creates a school with N classrooms and N teachers (each with a bearer
token written straight to the database: 1,000 argon2 logins would measure the password hasher),
serves the app with gunicorn (or `emergency serve`) on a free port, logs the principal in, starts
a lockdown drill, fires the check-ins paced over --spread seconds, then polls the roll-up until it
shows every room. It prints p50/p99 latency, errors, and how long after the last check-in returned
the roll-up was complete. Everything is bounded by --deadline; the server is always stopped.

Roster mode (`--roster 2000 --rooms 100`): the school also has that many students, one homeroom
class per room (docs/roster.md), and each teacher reports by student (POST .../roster/checkins,
every 17th room with one student missing, every 5th with one extra from the next room). While the
teachers report, the principal polls the school's student list (GET .../roster, every student with
a status) and its latency is printed: the goal is p99 under 200 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, select, text

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


def class_of(http, base: str, run_id: int, tokens: list[str]) -> list[dict]:
    """Each teacher's expected students (read once, before the burst, as a teacher's phone would)."""
    return [http.get(f"{base}/api/v1/runs/{run_id}/roster/room", headers={"Authorization": f"Bearer {t}"},
                     timeout=30).json()["students"] for t in tokens]


def seed(url: str, rooms: int, tag: str, students: int = 0) -> tuple[int, str, list[str]]:
    """Create the school, its classrooms, teachers with tokens and a principal; returns (school, email, tokens)."""
    from sqlalchemy.orm import Session

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
        school_id, email = school.id, principal.email
    engine.dispose()
    return school_id, email, tokens


def serve(args, url: str, port: int, workdir: Path) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, ENV="development", DISPATCHER=args.dispatcher, LOG_LEVEL="WARNING",
               PLAYBOOKS_DIR=str(REPO / "playbooks"), COMPLIANCE_RULES=str(REPO / "rules" / "new-york.yaml"),
               INSTANCE_PATH=str(workdir / "instance"), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    bin_dir = Path(sys.executable).parent
    if args.server == "gunicorn":
        command = [str(bin_dir / "gunicorn"), "-w", str(args.workers), "-k", "gthread", "--threads",
                   str(args.threads), "-b", f"127.0.0.1:{port}", "--timeout", "60", "emergency.app:create_app()"]
    else:
        command = [str(bin_dir / "emergency"), "serve", "--port", str(port)]
    log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in time")


def roster_body(i: int, classes: list[list[dict]]) -> dict:
    """Room i's report by student: every 17th has one missing, every 5th one extra from the next room."""
    mine, theirs = classes[i], classes[(i + 1) % len(classes)]
    body = {"exceptions": [], "extras": []}
    if i % 17 == 0 and mine:
        body["exceptions"].append({"student_id": mine[0]["id"], "status": "missing"})
    if i % 5 == 0 and len(theirs) > 1:
        body["extras"].append({"student_id": theirs[-1]["id"], "status": "present"})
    return body


def burst(base: str, run_id: int, tokens: list[str], clients: int, spread: float, deadline: float,
          classes: list[list[dict]] | None = None):
    """Fire one check-in per token, paced over `spread` seconds; returns (latencies, errors, last_return)."""
    local = threading.local()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    step = spread / max(1, len(tokens))

    def one(i: int) -> None:
        delay = start + i * step - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() > deadline:
            with lock:
                errors.append("deadline")
            return
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body = {"status": "students_missing" if i % 17 == 0 else "all_accounted", "present": 20 + i % 7,
                "missing": 1 if i % 17 == 0 else 0, "injured": 1 if i % 50 == 0 else 0, "extra": i % 3}
        path = "checkins"
        if classes is not None:
            body, path = roster_body(i, classes), "roster/checkins"
        t0 = time.perf_counter()
        try:
            response = local.session.post(f"{base}/api/v1/runs/{run_id}/{path}", json=body, timeout=15,
                                          headers={"Authorization": f"Bearer {tokens[i]}",
                                                   "Idempotency-Key": f"bench-{i}"})
            ok = response.status_code == 201
            detail = f"{response.status_code} {response.text[:120]}"
        except requests.RequestException as exc:
            ok, detail = False, type(exc).__name__
        elapsed = time.perf_counter() - t0
        with lock:
            latencies.append(elapsed)
            if not ok:
                errors.append(detail)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(len(tokens))))
    return latencies, errors, time.monotonic()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite database")
    parser.add_argument("--reset", action="store_true", help="PostgreSQL: drop and recreate the public schema first")
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which check-ins are sent")
    parser.add_argument("--server", choices=("gunicorn", "serve"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--dispatcher", choices=("off", "thread"), default="off",
                        help="thread: also send the drill's alerts (console provider) during the burst")
    parser.add_argument("--deadline", type=float, default=240.0, help="give up after this many seconds")
    parser.add_argument("--roster", type=int, default=0, metavar="STUDENTS",
                        help="roster mode: this many students; teachers report by student while the principal "
                             "polls the school's student list")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline

    workdir = Path(tempfile.mkdtemp(prefix="checkin-burst-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if args.reset and url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    upgrade(url)
    tag = secrets.token_hex(4)
    t0 = time.monotonic()
    school_id, principal_email, tokens = seed(url, args.rooms, tag, args.roster)
    print(f"database: {url.split('@')[-1] if '@' in url else url}")
    print(f"seeded {args.rooms} classrooms and teachers in {time.monotonic() - t0:.1f}s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(args, url, port, workdir)
    try:
        wait_ready(base, min(deadline, time.monotonic() + 60))
        http = requests.Session()
        login = http.post(f"{base}/api/v1/auth/login", json={"email": principal_email, "password": PASSWORD},
                          timeout=30)
        login.raise_for_status()
        http.headers["Authorization"] = f"Bearer {login.json()['token']}"
        started = http.post(f"{base}/api/v1/runs", json={"school_id": school_id, "playbook": "lockdown",
                                                         "mode": "drill"}, timeout=60)
        started.raise_for_status()
        run_id = started.json()["id"]

        classes, poller, roster_ms = None, None, []
        if args.roster:
            t_first = time.perf_counter()
            http.get(f"{base}/api/v1/runs/{run_id}/roster", timeout=60).raise_for_status()
            first_ms = (time.perf_counter() - t_first) * 1000
            print(f"first student list (works out who is expected where): {first_ms:.0f} ms")
            classes = class_of(http, base, run_id, tokens)
            stop = threading.Event()

            def poll_roster() -> None:
                watcher = requests.Session()
                watcher.headers["Authorization"] = http.headers["Authorization"]
                while not stop.is_set():
                    t_read = time.perf_counter()
                    watcher.get(f"{base}/api/v1/runs/{run_id}/roster", timeout=30).raise_for_status()
                    roster_ms.append((time.perf_counter() - t_read) * 1000)
                    time.sleep(0.1)

            poller = threading.Thread(target=poll_roster, daemon=True)
            poller.start()

        t_burst = time.monotonic()
        latencies, errors, last_return = burst(base, run_id, tokens, args.clients, args.spread, deadline, classes)
        burst_seconds = last_return - t_burst
        if poller is not None:
            stop.set()
            poller.join(30)

        complete_after = None
        polls = 0
        rollup_ms = []
        while time.monotonic() < min(deadline, last_return + 30):
            t_poll = time.perf_counter()
            rollup = http.get(f"{base}/api/v1/runs/{run_id}/accountability", timeout=30).json()
            rollup_ms.append((time.perf_counter() - t_poll) * 1000)
            polls += 1
            if rollup.get("reported") == args.rooms:
                complete_after = time.monotonic() - last_return
                break
            time.sleep(0.05)

        ms = [x * 1000 for x in latencies]
        print(f"server: {args.server} (workers={args.workers}, threads={args.threads}, dispatcher={args.dispatcher})")
        print(f"check-ins: {len(latencies)} sent by {args.clients} clients in {burst_seconds:.1f}s "
              f"({len(latencies) / burst_seconds:.0f}/s)")
        print(f"latency ms: p50={statistics.median(ms):.1f} p90={percentile(ms, 90):.1f} "
              f"p99={percentile(ms, 99):.1f} max={max(ms):.1f}")
        print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
        if complete_after is None:
            print(f"roll-up: NOT complete within the wait ({polls} polls)")
        else:
            print(f"roll-up complete {complete_after * 1000:.0f} ms after the last check-in returned "
                  f"({polls} poll(s), GET accountability took {rollup_ms[-1]:.0f} ms; figures: "
                  f"{rollup['figures']['seconds_to_100_percent']}s to 100%)")
        goal = not errors and percentile(ms, 99) < 250 and complete_after is not None and complete_after < 1
        print("goal (no errors, p99 < 250 ms, roll-up within 1 s):", "met" if goal else "NOT met")
        if args.roster:
            counts = http.get(f"{base}/api/v1/runs/{run_id}/roster", timeout=30).json()["counts"]
            print(f"student list during the burst: {len(roster_ms)} reads of {args.roster} students, "
                  f"p50={statistics.median(roster_ms):.1f} p99={percentile(roster_ms, 99):.1f} "
                  f"max={max(roster_ms):.1f} ms; after: {counts}")
            roster_goal = not errors and percentile(roster_ms, 99) < 200
            print("goal (student list p99 < 200 ms):", "met" if roster_goal else "NOT met")
            goal = goal and roster_goal
        return 0 if goal else 1
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        print(f"server log: {workdir / 'server.log'}")


if __name__ == "__main__":
    sys.exit(main())
