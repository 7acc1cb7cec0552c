"""Fan-out benchmark: a real lockdown for 2,000 recipients against a fake Twilio with 100 ms latency.

Serves the product with gunicorn (the Procfile's command, dispatcher thread in the web process),
starts the run with POST /api/v1/runs, and measures from the moment that call returns to the
moment the fake Twilio accepted the last SMS. Runs twice: at a configured provider rate, and with
no rate limit (compared with sending one after another). Then a third time at the configured rate
with every staff member's phone subscribed to Web Push, against a fake push service (50 ms latency)
that verifies each VAPID token and decrypts each payload: the time until the last push is accepted,
and whether the first partner SMS came any later than without the pushes.

    python bench/fanout.py [--recipients 2000] [--rate 100] [--latency 0.1] [--push-latency 0.05]
                           [--database-url URL [--reset]] [--only-push] [--workers N]

Each measurement needs a database with nothing left to send: a cancelled run leaves its
cancellation messages queued, and a later run's dispatchers would spend the measurement retrying
them against fakes that are gone. Without a URL every measurement gets a new SQLite file; a
PostgreSQL URL is emptied before each measurement with `--reset`, and refused without it when it
holds unsent alerts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import _seed  # noqa: E402

from emergency.accounts.service import set_password  # noqa: E402
from emergency.app import create_app  # noqa: E402
from emergency.config import Config  # noqa: E402
from emergency.db import db  # noqa: E402
from emergency.directory.models import Partner, Person, School  # noqa: E402
from emergency.migrate import upgrade  # noqa: E402
from emergency.push.models import PushSubscription  # noqa: E402
from emergency.push.vapid import generate_private_key  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402
from tests.served import ServedProcess, WorkerProcess  # noqa: E402

PASSWORD = "benchmark-password"


class PushServiceProcess:
    """tests/fakes/fake_push.py in a process of its own: it verifies and decrypts every push, which
    would otherwise compete with the fake Twilio and this script for one interpreter."""

    def __init__(self, devices: int, latency: float):
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.fake_push", str(devices), str(latency)],
                                        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = json.loads(self.process.stdout.readline())
        self.origin, self.subscriptions = hello["origin"], hello["subscriptions"]

    def stats(self) -> dict:
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def seed(database_url: str, recipients: int, push: PushServiceProcess | None = None) -> tuple[int, str, int]:
    """One school: 10 admins, 3 partners, the rest teachers; and a small one to warm the server up.

    With `push`, every staff member has one phone subscribed at that fake push service.
    """
    upgrade(database_url)
    app = create_app(Config(ENV="test", DATABASE_URL=database_url, DISPATCHER="off"))
    with app.app_context():
        session = db.session
        tag = random.randint(200, 989)  # a fresh area code and school code per run: reruns on one database
        school = School(code=f"BENCH{tag}", name="Benchmark High School", timezone="America/New_York")
        session.add(school)
        session.flush()
        people = []
        for n in range(recipients - 3):
            role = "school_admin" if n < 10 else "teacher"
            people.append(Person(name=f"Staff {n:05d}", role=role, email=f"staff{n}.{tag}@bench.example.org",
                                 mobile=f"+1{tag}{2000000 + n:07d}", schools=[school]))
        session.add_all(people)
        if push is not None:
            session.flush()
            for person, device in zip(people, push.subscriptions, strict=False):
                session.add(PushSubscription(person_id=person.id, endpoint=device["endpoint"],
                                             p256dh=device["keys"]["p256dh"], auth=device["keys"]["auth"],
                                             user_agent="bench"))
        session.add_all(Partner(agency="Bench PD", name=f"Officer {n}", role="police", schools=[school],
                                email=f"officer{n}.{tag}@pd.example.org", mobile=f"+1{tag}{3000000 + n:07d}")
                        for n in range(3))
        warm = School(code=f"WARM{tag}", name="Warm-up School", timezone="America/New_York")
        session.add(warm)
        session.flush()
        people[0].schools.append(warm)
        session.add(Person(name="Warm Teacher", role="teacher", email=f"warm.{tag}@bench.example.org",
                           mobile=f"+1{tag}{4000000:07d}", schools=[warm]))
        session.commit()
        set_password(session, people[0].email, PASSWORD)
        session.commit()
        school_id, email, warm_id = school.id, people[0].email, warm.id
    app.extensions["db"]["engine"].dispose()
    return school_id, email, warm_id


def run_once(database_url: str, recipients: int, rate: float, latency: float, concurrency: int,
             push_latency: float | None = None, workers: int = 0) -> dict:
    push = PushServiceProcess(recipients, push_latency) if push_latency is not None else None
    try:
        with FakeTwilio() as fake:
            return _run(database_url, recipients, rate, latency, concurrency, fake, push, workers)
    finally:
        if push is not None:
            push.close()


def unsent_alerts(database_url: str) -> int:
    """Alerts of earlier runs still to send (0 on a database not migrated yet)."""
    from sqlalchemy import create_engine, func, inspect, select

    from emergency.alerts.models import QUEUED, SENDING, Alert

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alerts"):
                return 0
            return connection.execute(select(func.count()).select_from(Alert)
                                      .where(Alert.status.in_((QUEUED, SENDING)))).scalar_one()
    finally:
        engine.dispose()


def _run(database_url: str, recipients: int, rate: float, latency: float, concurrency: int, fake: FakeTwilio,
         push: PushServiceProcess | None, workers: int = 0) -> dict:
    school_id, email, warm_school = seed(database_url, recipients, push)
    fake.configure(latency=latency, callbacks=False)
    env = {"DATABASE_URL": database_url, "ENV": "test", "SECRET_KEY": "bench-secret-key-0123456789",
           "ALERT_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid,
           "TWILIO_AUTH_TOKEN": fake.auth_token, "TWILIO_FROM_NUMBER": "+15005550006",
           "TWILIO_API_BASE": fake.base_url, "SMS_PER_SECOND": str(rate), "CALLS_PER_SECOND": "5",
           "DISPATCH_CONCURRENCY": str(concurrency), "DISPATCHER": "thread", "LOG_LEVEL": "WARNING",
           "VAPID_PRIVATE_KEY": generate_private_key(), "STAFF_SMS_LINKS": "true"}
    # Its output goes to a file: a pipe nobody reads would stop the server once 64 KB of log filled it.
    log_path = Path(tempfile.mkdtemp(prefix="fanout-")) / "server.log"
    print(f"  server log: {log_path}")
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(ServedProcess(env, start_timeout=180, log_path=log_path))  # slow when loaded
        worker_processes = [  # the Procfile's `worker:` line, beside the web process's own dispatcher
            stack.enter_context(WorkerProcess(env, log_path=log_path.with_name(f"worker-{n}.log")))
            for n in range(workers)]
        _seed.wait_for_dispatchers(database_url, 1 + workers, time.monotonic() + 180)
        # Who used the machine's CPU during the fan-out: the product's processes, and the fakes beside them.
        # (pid, with its children): this script's children are the server and the fakes, counted on their own.
        cpu_users = {"web": (served.process.pid, True),
                     **{f"worker {n}": (w.process.pid, True) for n, w in enumerate(worker_processes)},
                     "fake Twilio and this script": (os.getpid(), False),
                     **({"fake push service": (push.process.pid, True)} if push is not None else {})}
        token = requests.post(served.url + "/api/v1/auth/login", timeout=30,
                              json={"email": email, "password": PASSWORD}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        # A server that has been up a while: one small run first, so the figure below is not the
        # one-off cost of a cold process (SQL compilation caches, lazy imports).
        warm = requests.post(served.url + "/api/v1/runs", headers=headers, timeout=30,
                             json={"school_id": warm_school, "playbook": "hold", "mode": "drill"})
        requests.post(served.url + f"/api/v1/runs/{warm.json()['id']}/cancel", headers=headers,
                      json={"reason": "warm-up"}, timeout=30)
        fake.wait_for(lambda: len(fake.messages) >= 2, timeout=10)
        fake.reset()
        fake.configure(latency=latency, callbacks=False)
        warm_pushes = 0
        if push is not None:  # the warm-up's own push to the one staff member it reached
            time.sleep(1.0)
            warm_pushes = len(push.stats()["times"])
        cpu_before = {name: _seed.cpu_seconds(*process) for name, process in cpu_users.items()}
        posted = time.monotonic()
        response = requests.post(served.url + "/api/v1/runs", headers=headers, timeout=30,
                                 json={"school_id": school_id, "playbook": "lockdown", "mode": "real",
                                       "confirm": True})
        returned = time.monotonic()
        assert response.status_code == 201, response.text
        expected = recipients
        deadline = returned + max(120.0, 3 * recipients / (rate or 50))
        pushes_expected = recipients - 3 if push is not None else 0
        pushes: list[float] = []
        cpu_at_last_push, wall_at_last_push = {}, 0.0
        # Texts and pushes are watched together: on a loaded machine the paced texts may not all be out by
        # the deadline, and the pushes' figure is still worth having.
        while time.monotonic() < deadline and (len(fake.messages) < expected or len(pushes) < pushes_expected):
            if push is not None and len(pushes) < pushes_expected:
                pushes = push.stats()["times"][warm_pushes:]
                if len(pushes) >= pushes_expected:
                    cpu_at_last_push = {name: _seed.cpu_seconds(*process) - cpu_before[name]
                                        for name, process in cpu_users.items()}
                    wall_at_last_push = time.monotonic() - posted
            time.sleep(0.1)
        messages = sorted(fake.messages, key=lambda m: m["accepted_at"])
        cpu = {name: _seed.cpu_seconds(*process) - cpu_before[name] for name, process in cpu_users.items()}
        cpu_wall = time.monotonic() - posted
        try:  # the figures are taken; a server too busy to answer in time must not lose them
            requests.post(served.url + f"/api/v1/runs/{response.json()['id']}/cancel", headers=headers,
                          json={"reason": "benchmark over"}, timeout=120)
        except requests.RequestException as exc:
            print(f"  NOTE: cancelling the run failed ({type(exc).__name__}); the database is thrown away anyway")
    if len(messages) < expected:
        print(f"  NOTE: only {len(messages)} of {expected} texts were accepted within {deadline - returned:.0f} s")
    if len(pushes) < pushes_expected:
        print(f"  NOTE: only {len(pushes)} of {pushes_expected} pushes were accepted within "
              f"{deadline - returned:.0f} s; refused: {push.stats()['refused']}")
    first_wall = returned  # fake.accepted_at is time.monotonic() in this same process
    last = messages[-1]["accepted_at"]
    elapsed = last - first_wall
    priority_numbers = {m for m in _priority_numbers(database_url, school_id)}
    positions = [i for i, m in enumerate(messages, 1) if m["to"] in priority_numbers]
    partners = set(_partner_numbers(database_url, school_id))
    first_partner = min(m["accepted_at"] for m in messages if m["to"] in partners)
    return {"post_ms": (returned - posted) * 1000, "elapsed": elapsed, "count": len(messages),
            "first_partner_ms": (first_partner - returned) * 1000, "push_count": len(pushes),
            "push_first": (pushes[0] - returned) if pushes else None,
            "push_elapsed": (pushes[-1] - returned) if pushes else None,
            "push_curve": _curve([t - returned for t in pushes]),
            "rate": len(messages) / elapsed if elapsed > 0 else float("inf"),
            "last_priority_position": max(positions) if positions else None, "priority_count": len(positions),
            "cpu": cpu, "cpu_wall": cpu_wall, "cpu_pushes": cpu_at_last_push, "cpu_pushes_wall": wall_at_last_push}


def _curve(seconds: list[float], step: float = 0.5) -> str:
    """How many things happened in each `step` after time 0: the shape of a fan-out, not just its end."""
    if not seconds:
        return "none"
    counts = [0] * (int(max(seconds) // step) + 1)
    for at in seconds:
        counts[max(0, int(at // step))] += 1
    return " ".join(str(n) for n in counts)


def _partner_numbers(database_url: str, school_id: int) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        numbers = list(connection.execute(text(
            "SELECT p.mobile FROM partners p JOIN partner_schools ps ON ps.partner_id = p.id "
            "WHERE ps.school_id = :s"), {"s": school_id}).scalars())
    engine.dispose()
    return numbers


def _priority_numbers(database_url: str, school_id: int) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        admins = connection.execute(text(
            "SELECT p.mobile FROM people p JOIN person_schools ps ON ps.person_id = p.id "
            "WHERE ps.school_id = :s AND p.role IN ('school_admin', 'district_admin')"), {"s": school_id}).scalars()
        partners = connection.execute(text(
            "SELECT p.mobile FROM partners p JOIN partner_schools ps ON ps.partner_id = p.id "
            "WHERE ps.school_id = :s"), {"s": school_id}).scalars()
        numbers = list(admins) + list(partners)
    engine.dispose()
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="configured SMS per second")
    parser.add_argument("--latency", type=float, default=0.1, help="simulated provider latency, seconds")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--push-latency", type=float, default=0.05, help="simulated push service latency, seconds")
    parser.add_argument("--only-push", action="store_true", help="skip the two SMS-only runs")
    parser.add_argument("--workers", type=int, default=0,
                        help="`emergency worker` processes dispatching beside the web process's own dispatcher")
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--reset", action="store_true",
                        help="PostgreSQL: drop and recreate the public schema before each measurement")
    args = parser.parse_args()

    def database_url(tag: str) -> str:
        if not args.database_url:
            return f"sqlite:///{tempfile.mkdtemp(prefix=f'fanout-{tag}-')}/bench.sqlite3"
        url, _ = _seed.prepare_database(args.database_url, args.reset)
        if (left := unsent_alerts(url)):
            sys.exit(f"{args.database_url} holds {left} unsent alerts of earlier runs, which the dispatchers would "
                     "retry during the measurement: pass --reset to empty it first, or a fresh database")
        return url

    print(f"fan-out of {args.recipients} recipients, provider latency {args.latency * 1000:.0f} ms, "
          f"{args.concurrency} concurrent sends, database {args.database_url or 'SQLite'}")
    print(_seed.host_speed())
    if not args.only_push:
        _sms_runs(args, database_url)
    with_push = run_once(database_url("push"), args.recipients, args.rate, args.latency, args.concurrency,
                         push_latency=args.push_latency, workers=args.workers)
    print(f"\n[rate limit {args.rate:g}/s, and {with_push['push_count']} staff phones with Web Push on, "
          f"push service latency {args.push_latency * 1000:.0f} ms]")
    _report(with_push, args.rate)
    print(f"  {with_push['push_count']} pushes accepted: first {with_push['push_first']:.2f} s, last "
          f"{with_push['push_elapsed']:.2f} s after POST returned (goal: all within 2 s)")
    print(f"  pushes accepted per half second after POST returned: {with_push['push_curve']}")
    print(f"  first partner SMS {with_push['first_partner_ms']:.0f} ms after POST returned")
    print(f"  POST /api/v1/runs returned in {with_push['post_ms']:.0f} ms")
    for label, cpu, wall in (("the last push", with_push["cpu_pushes"], with_push["cpu_pushes_wall"]),
                             ("the last text", with_push["cpu"], with_push["cpu_wall"])):
        if cpu:
            print(f"  CPU seconds from the POST until {label} ({wall:.1f} s, {os.cpu_count()} cores): "
                  + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()))


def _sms_runs(args, database_url) -> None:
    paced = run_once(database_url("paced"), args.recipients, args.rate, args.latency, args.concurrency)
    print(f"\n[rate limit {args.rate:g}/s]")
    _report(paced, args.rate)
    print(f"  first partner SMS {paced['first_partner_ms']:.0f} ms after POST returned")
    free = run_once(database_url("free"), args.recipients, 0.0, args.latency, args.concurrency)
    sequential = 1.0 / args.latency
    print("\n[no rate limit]")
    _report(free, None)
    print(f"  one after another would manage {sequential:.1f} msg/s: speed-up {free['rate'] / sequential:.1f}x "
          f"(goal >= 20x)")
    print(f"\nPOST /api/v1/runs returned in {paced['post_ms']:.0f} ms and {free['post_ms']:.0f} ms (goal < 200 ms)")
    print(f"median POST: {statistics.median([paced['post_ms'], free['post_ms']]):.0f} ms")


def _report(result: dict, rate: float | None) -> None:
    print(f"  {result['count']} messages accepted in {result['elapsed']:.2f} s after POST returned")
    print(f"  achieved {result['rate']:.1f} msg/s", end="")
    if rate:
        print(f" = {result['rate'] / rate * 100:.0f}% of the configured {rate:g}/s (goal >= 90%)")
    else:
        print()
    print(f"  last of {result['priority_count']} partner/admin messages was #{result['last_priority_position']} "
          f"in the send order")


if __name__ == "__main__":
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    main()
