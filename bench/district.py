"""District benchmark: three dispatcher processes share one send rate; a real lockdown overtakes a drill day.

Ten schools of 200 staff start a lockdown drill at once; one second later a real lockdown starts
at an eleventh school. Three `emergency worker` processes send through one fake Twilio (with
provider latency), sharing the configured rate through Redis (`--redis-url`) or, without it,
through the PostgreSQL budget. Prints, from the times the fake Twilio received each request (before
its simulated latency, as a provider's rate limit counts them):

- the most texts accepted in any one-second window, against the configured rate;
- the sustained rate (texts / seconds from the first to the last);
- the time from the real start to its last text, against (its texts / rate) + 2 s;
- per school, the seconds from its start to its first and its last text.

    python bench/district.py --database-url postgresql+psycopg://... [--redis-url redis://...]
        [--schools 10] [--staff 200] [--rate 100] [--latency 0.05] [--workers 3] [--webs 0]

`--webs N` also serves N web instances with the Procfile's `web:` line, each dispatching inside
(DISPATCHER=thread, the default): the issue's "Done when" is `--webs 2 --workers 1 --rate 10
--schools 2 --redis-url redis://...`.

Runs on PostgreSQL only (several processes on SQLite is not a supported deployment). Use a fresh
database: active runs left by other programs keep the dispatchers busy with their escalations.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import _seed  # noqa: E402

from emergency.app import create_app  # noqa: E402
from emergency.config import Config  # noqa: E402
from emergency.db import db  # noqa: E402
from emergency.directory.models import Partner, Person, School  # noqa: E402
from emergency.directory.principal import Principal  # noqa: E402
from emergency.migrate import upgrade  # noqa: E402
from emergency.runs.service import StartRequest, start_run  # noqa: E402
from tests.fakes.fake_twilio import FakeTwilio  # noqa: E402


def seed(app, schools: int, staff: int) -> list[dict]:
    """`schools` drilling schools and one more for the real run, each with `staff` people (3 admins)."""
    tag = random.randint(200, 989)
    made = []
    with app.app_context():
        session = db.session
        district_admin = Person(name="District Admin", role="district_admin", email=f"district.{tag}@bench.example.org",
                                mobile=None)
        session.add(district_admin)
        for s in range(schools + 1):
            school = School(code=f"D{tag}{s:02d}", name=f"School {s:02d}", timezone="America/New_York")
            people = [Person(name=f"Staff {s:02d}-{n:04d}", role="school_admin" if n < 3 else "teacher",
                             email=f"s{s}.{n}.{tag}@bench.example.org", mobile=f"+1{tag}5{s:02d}{n:04d}",
                             schools=[school]) for n in range(staff)]
            session.add(school)
            session.add_all(people)
            session.add(Partner(agency="Bench PD", name=f"Officer {s}", role="police", schools=[school],
                                email=f"officer{s}.{tag}@pd.example.org", mobile=f"+1{tag}5{s:02d}9999"))
            session.flush()
            made.append({"id": school.id, "numbers": {p.mobile for p in people} | {f"+1{tag}5{s:02d}9999"}})
        session.commit()
        made[0]["district_admin"] = district_admin.id
    return made


def start(app, school_id: int, admin_id: int, mode: str) -> tuple[int, float]:
    with app.app_context():
        principal = Principal(account_id=0, kind="person", id=admin_id, name="District Admin", role="district_admin",
                              email="", school_ids=None)
        run, _ = start_run(db.session, principal, StartRequest(school_id=school_id, playbook="lockdown", mode=mode,
                                                               confirm=True), app.extensions["playbooks"])
        db.session.commit()
        return run.id, time.monotonic()


def queued_texts(database_url: str, run_ids: list[int], cancel: bool = False) -> int:
    """The runs' texts to send (their calls are paced apart); with `cancel`, drop whatever is still queued."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        if cancel:
            connection.execute(text("UPDATE alerts SET status = 'cancelled' WHERE run_id = ANY(:ids) "
                                    "AND status IN ('queued', 'sending')"), {"ids": run_ids})
            # Nobody acknowledges in a benchmark: escalations left due would load the next run's dispatchers.
            connection.execute(text("UPDATE alerts SET escalate_at = NULL WHERE run_id = ANY(:ids)"), {"ids": run_ids})
        count = connection.execute(text("SELECT count(*) FROM alerts WHERE run_id = ANY(:ids) AND channel = 'sms' "
                                        "AND status IN ('queued', 'sending', 'sent')"), {"ids": run_ids}).scalar()
    engine.dispose()
    return count


def wait_for_workers(database_url: str, count: int) -> None:
    """Until every worker beats: the drills must not start while some are still importing."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    deadline = time.monotonic() + 120
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            alive = connection.execute(text("SELECT count(*) FROM dispatchers "
                                            "WHERE seen_at > now() - interval '3 seconds'")).scalar()
            connection.rollback()
            if alive >= count:
                break
            time.sleep(0.2)
    engine.dispose()
    time.sleep(1.5)  # and each has counted the others (the local share is recounted every second)


def busiest_second(stamps: list[float]) -> tuple[int, int]:
    """The most stamps in any one-second window (t - 1, t], and the index of that window's first."""
    best, first, j = 0, 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        if i - j + 1 > best:
            best, first = i - j + 1, j
    return best, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="PostgreSQL (it is migrated, and schools are added)")
    parser.add_argument("--redis-url", default="", help="share the rate through Redis; unset: the database budget")
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="configured SMS per second, for everyone together")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=3, help="`emergency worker` processes")
    parser.add_argument("--webs", type=int, default=0, help="web instances (the Procfile's web: line), each "
                                                           "with its dispatcher inside")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("bench/district.py needs PostgreSQL: several dispatcher processes on SQLite is not supported")

    upgrade(args.database_url)
    app = create_app(Config(ENV="test", DATABASE_URL=args.database_url, DISPATCHER="off", LOG_LEVEL="WARNING"))
    schools = seed(app, args.schools, args.staff)
    admin_id = schools[0]["district_admin"]
    with FakeTwilio() as fake:
        fake.configure(latency=args.latency, callbacks=False)
        env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url, "ENV": "test",
               "SECRET_KEY": "bench-secret-key-0123456789", "ALERT_PROVIDER": "twilio",
               "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
               "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE": fake.base_url,
               "SMS_PER_SECOND": str(args.rate), "CALLS_PER_SECOND": "5", "DISPATCH_CONCURRENCY": "32",
               "LOG_LEVEL": "WARNING", "PUBLIC_BASE_URL": "http://127.0.0.1:9",
               # Earlier runs left texts in `sent` (no callbacks): polling them would hold up the first pass.
               "POLL_AFTER_SECONDS": "86400"}
        workers = [subprocess.Popen([sys.executable, "-m", "emergency", "worker"], env=env, cwd=REPO)
                   for _ in range(args.workers)]
        for _ in range(args.webs):
            web_env = {**env, "PORT": str(_seed.free_port()), "DISPATCHER": "thread"}
            workers.append(subprocess.Popen(_seed.procfile_command("web", web_env), env=web_env, cwd=REPO))
        try:
            wait_for_workers(args.database_url, args.workers + args.webs)
            started = {}
            for school in schools[:-1]:
                started[school["id"]] = start(app, school["id"], admin_id, "drill")
            time.sleep(1.0)
            real_school = schools[-1]
            started[real_school["id"]] = start(app, real_school["id"], admin_id, "real")
            expected = queued_texts(args.database_url, [run_id for run_id, _ in started.values()])
            deadline = time.monotonic() + 60 + 3 * expected / args.rate
            while time.monotonic() < deadline and len(fake.messages) < expected:
                time.sleep(0.1)
            messages = sorted(fake.messages, key=lambda m: m["received_at"])
            cpu = sum(_seed.cpu_seconds(worker.pid) for worker in workers)
            # What is left (calls at 5/s, say) must not be sent ahead of the next run's texts.
            queued_texts(args.database_url, [run_id for run_id, _ in started.values()], cancel=True)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
    report(args, schools, started, messages, expected)
    print(f"  dispatching processes' CPU: {cpu:.1f} s in all, {cpu * 1000 / max(len(messages), 1):.1f} ms a text "
          "(user+system, from /proc; includes their escalation calls and start-up)")


def report(args, schools, started, messages, expected) -> None:
    stamps = [m["received_at"] for m in messages]
    print(_seed.host_speed())
    print(f"district: {args.schools} schools x {args.staff} staff drilling, a real lockdown at one more school 1 s "
          f"later; {args.workers} worker(s) and {args.webs} web instance(s) dispatching, "
          f"budget {'Redis' if args.redis_url else 'PostgreSQL'}, "
          f"provider latency {args.latency * 1000:.0f} ms, configured rate {args.rate:g} texts/s")
    print(f"  {len(messages)} of {expected} texts accepted")
    if len(messages) < 2:
        return
    elapsed = stamps[-1] - stamps[0]
    busiest, first = busiest_second(stamps)
    gaps = [later - earlier for earlier, later in zip(stamps[first:first + busiest], stamps[first + 1:first + busiest],
                                                      strict=False)]
    print(f"  busiest one-second window: {busiest} texts (rate {args.rate:g}; goal <= {args.rate + 1:g}), "
          f"{stamps[first] - stamps[0]:.1f} s after the first text, gaps in it {min(gaps, default=0) * 1000:.0f}"
          f"-{max(gaps, default=0) * 1000:.0f} ms")
    print(f"  sustained: {len(stamps) / elapsed:.1f} texts/s = {len(stamps) / elapsed / args.rate * 100:.0f}% "
          f"of the rate (goal >= 90%)")
    real = schools[-1]
    real_id, real_start = started[real["id"]]
    real_stamps = [m["received_at"] for m in messages if m["to"] in real["numbers"]]
    goal = len(real["numbers"]) / args.rate + 2
    if real_stamps:
        print(f"  real run: {len(real_stamps)} texts, last {max(real_stamps) - real_start:.2f} s after its start "
              f"(goal <= {goal:.2f} s)")
        drill_during = sum(1 for m in messages if real_start < m["received_at"] <= max(real_stamps)
                           and m["to"] not in real["numbers"])
        print(f"  drill texts accepted while the real run was sending: {drill_during} (in flight when it started)")
    print("  per school: seconds from its start to its first and last text")
    for n, school in enumerate(schools):
        run_start = started[school["id"]][1]
        mine = [m["received_at"] for m in messages if m["to"] in school["numbers"]]
        label = "REAL" if school is real else "drill"
        if mine:
            print(f"    school {n:02d} ({label}): first {min(mine) - run_start:6.2f} s, "
                  f"last {max(mine) - run_start:6.2f} s ({len(mine)} texts)")
    print("  (figures from a machine of 2 cores shared with other work: noisy)")


if __name__ == "__main__":
    main()
