"""Benchmark of roster check-ins (the burst with watching phones is bench/checkin_burst.py).

    .venv/bin/python bench/roster_burst.py                       # temporary SQLite database
    .venv/bin/python bench/roster_burst.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

It migrates the database, creates a school with N classrooms and N teachers (each with a bearer
token written straight to the database: 1,000 argon2 logins would measure the password hasher),
serves the app as the Procfile's `web:` line says (bench/_seed.py, shared with
bench/checkin_burst.py) on a free port, logs the principal in, starts
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
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402


def class_of(http, base: str, run_id: int, tokens: list[str]) -> list[dict]:
    """Each teacher's expected students (read once, before the burst, as a teacher's phone would)."""
    return [http.get(f"{base}/api/v1/runs/{run_id}/roster/room", headers={"Authorization": f"Bearer {t}"},
                     timeout=30).json()["students"] for t in tokens]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite database")
    parser.add_argument("--reset", action="store_true", help="PostgreSQL: drop and recreate the public schema first")
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which check-ins are sent")
    parser.add_argument("--server", choices=("procfile", "serve"), default="procfile",
                        help="procfile: the Procfile's web: line; serve: `emergency serve`")
    parser.add_argument("--dispatcher", choices=("in-process", "worker", "off"), default="in-process",
                        help="send the drill's alerts (console provider) from the web process, a worker, or not")
    parser.add_argument("--deadline", type=float, default=240.0, help="give up after this many seconds")
    parser.add_argument("--roster", type=int, default=0, metavar="STUDENTS",
                        help="roster mode: this many students; teachers report by student while the principal "
                             "polls the school's student list")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline

    url, workdir = _seed.prepare_database(args.database_url, args.reset)
    tag = secrets.token_hex(4)
    t0 = time.monotonic()
    school_id, principal_email, tokens = _seed.seed(url, args.rooms, tag, args.roster)
    print(_seed.host_speed())
    print(f"database: {url.split('@')[-1] if '@' in url else url}")
    print(f"seeded {args.rooms} classrooms and teachers in {time.monotonic() - t0:.1f}s")

    port = _seed.free_port()
    base = f"http://127.0.0.1:{port}"
    processes = _seed.serve(url, port, workdir, server=args.server, dispatcher=args.dispatcher)
    try:
        _seed.wait_ready(base, min(deadline, time.monotonic() + 60))
        http = _seed.login(base, principal_email)
        run_id = _seed.start_drill(http, base, school_id)

        classes, poller, roster_ms = None, None, []
        if args.roster:
            t_first = time.perf_counter()
            http.get(f"{base}/api/v1/runs/{run_id}/roster", timeout=60).raise_for_status()
            first_ms = (time.perf_counter() - t_first) * 1000
            print(f"first student list (works out who is expected where): {first_ms:.0f} ms")
            classes = class_of(http, base, run_id, tokens)
            polling_done = threading.Event()

            def poll_roster() -> None:
                watcher = requests.Session()
                watcher.headers["Authorization"] = http.headers["Authorization"]
                while not polling_done.is_set():
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
            polling_done.set()
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
        print(f"serving: {args.server}, dispatcher {args.dispatcher}")
        print(f"check-ins: {len(latencies)} sent by {args.clients} clients in {burst_seconds:.1f}s "
              f"({len(latencies) / burst_seconds:.0f}/s)")
        print(f"latency ms: p50={statistics.median(ms):.1f} p90={_seed.percentile(ms, 90):.1f} "
              f"p99={_seed.percentile(ms, 99):.1f} max={max(ms):.1f}")
        print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
        if complete_after is None:
            print(f"roll-up: NOT complete within the wait ({polls} polls)")
        else:
            print(f"roll-up complete {complete_after * 1000:.0f} ms after the last check-in returned "
                  f"({polls} poll(s), GET accountability took {rollup_ms[-1]:.0f} ms; figures: "
                  f"{rollup['figures']['seconds_to_100_percent']}s to 100%)")
        goal = not errors and _seed.percentile(ms, 99) < 250 and complete_after is not None and complete_after < 1
        print("goal (no errors, p99 < 250 ms, roll-up within 1 s):", "met" if goal else "NOT met")
        if args.roster:
            counts = http.get(f"{base}/api/v1/runs/{run_id}/roster", timeout=30).json()["counts"]
            print(f"student list during the burst: {len(roster_ms)} reads of {args.roster} students, "
                  f"p50={statistics.median(roster_ms):.1f} p99={_seed.percentile(roster_ms, 99):.1f} "
                  f"max={max(roster_ms):.1f} ms; after: {counts}")
            roster_goal = not errors and _seed.percentile(roster_ms, 99) < 200
            print("goal (student list p99 < 200 ms):", "met" if roster_goal else "NOT met")
            goal = goal and roster_goal
        return 0 if goal else 1
    finally:
        _seed.stop(processes)
        print(f"server logs: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
