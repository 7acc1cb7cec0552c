"""Live-push benchmark: a ladder of phones on one instance, a drill start, then a reconnect storm.

Serves the product as the Procfile does (gunicorn, one gevent worker) and, in the same run, the
former threaded model (gthread, 100 threads) for comparison. Phones are raw Socket.IO websocket
clients on one asyncio loop (aiohttp, not a thread per phone), all logged in as one teacher, the
token in the auth payload. Per step it prints: phones connected, connection rate, how many got
`run.started`, p50/p99 from the moment `POST /api/v1/runs` returned, that call's time, a
`GET /api/v1/me` time, and the server worker's RSS (and its growth per connection).

Then the reconnect storm: N phones see a start, drop, miss five updates, and all reconnect at once;
each fills its gap from `GET /runs/{id}/timeline?after_seq=` and must end with the full timeline.

Ten thousand sockets need ten thousand file descriptors on each side: this script raises its own
soft limit to the hard one, and the server does the same at start (emergency/wsgi.py).

The phones run in a thread of their own; `--client-nice N` lowers that thread's CPU priority, so
the server gets the cores as it would on a machine of its own (a school's phones are not on the
server's machine). A diagnostic: the niced phones also read their events later, which lengthens
the start-to-phone figures.

    python bench/live_push.py [--ladder 100,1000,5000,10000] [--threaded 50,150] [--storm 1000]
                              [--database-url URL] [--auth-cache SECONDS] [--client-nice N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import _seed  # noqa: E402

from emergency.accounts.service import set_password  # noqa: E402
from emergency.app import create_app  # noqa: E402
from emergency.config import Config  # noqa: E402
from emergency.db import db  # noqa: E402
from emergency.directory.models import Person, School  # noqa: E402
from emergency.migrate import upgrade  # noqa: E402
from emergency.serving import raise_open_file_limit  # noqa: E402
from tests.served import ServedProcess  # noqa: E402

PASSWORD = "benchmark-password"
HANDSHAKES_IN_FLIGHT = 500  # like phones on a school's Wi-Fi: many at once, not all in one instant


def seed(database_url: str) -> tuple[int, str, str]:
    """One school with a principal, the teacher every phone logs in as, and a few more staff."""
    upgrade(database_url)
    app = create_app(Config(ENV="test", DATABASE_URL=database_url, DISPATCHER="off"))
    with app.app_context():
        session = db.session
        tag = random.randint(200, 989)
        school = School(code=f"LIVE{tag}", name="Live Push Middle School", timezone="America/New_York")
        people = [Person(name=f"Staff {n}", role="school_admin" if n == 0 else "teacher", schools=[school],
                         email=f"live{n}.{tag}@bench.example.org", mobile=f"+1{tag}{5000000 + n:07d}")
                  for n in range(10)]
        session.add_all([school, *people])
        session.commit()
        for person in people[:2]:
            set_password(session, person.email, PASSWORD)
        session.commit()
        result = school.id, people[0].email, people[1].email
    app.extensions["db"]["engine"].dispose()
    return result


def gunicorn(model: str, port: int) -> list[str]:
    """The Procfile's web command (gevent), or the former one (gthread, 100 threads)."""
    worker = (["-k", "gevent", "--worker-connections", "20000"] if model == "gevent"
              else ["-k", "gthread", "--threads", "100"])
    return [sys.executable, "-m", "gunicorn", "-w", "1", *worker, "--timeout", "120", "-b", f"127.0.0.1:{port}",
            "emergency.wsgi:app"]


def worker_pid(master_pid: int) -> int:
    return int(Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()[0])


def worker_cpu_seconds(master_pid: int) -> float:
    """User and system CPU gunicorn's one worker has used so far."""
    fields = Path(f"/proc/{worker_pid(master_pid)}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_rss_mb(master_pid: int) -> float:
    """Resident memory of gunicorn's one worker (the master's child)."""
    for line in Path(f"/proc/{worker_pid(master_pid)}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Phone:
    """One raw Socket.IO client: answers pings, records every run event's seq and arrival time."""

    # Offer permessage-deflate (window bits) in the upgrade, as every browser does; 0 offers nothing.
    compress = 15

    def __init__(self) -> None:
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.started: dict[int, float] = {}  # run id -> when run.started arrived
        self.seqs: dict[int, set[int]] = {}  # run id -> seqs seen, on the socket or from the timeline
        self.reader: asyncio.Task | None = None

    async def connect(self, http: aiohttp.ClientSession, ws_url: str, token: str) -> bool:
        try:
            self.ws = await http.ws_connect(ws_url, autoping=False, compress=self.compress, max_msg_size=0,
                                            timeout=aiohttp.ClientWSTimeout(ws_close=2))
            opened = await self.ws.receive_str()
            assert opened.startswith("0"), opened
            await self.ws.send_str("40" + json.dumps({"token": token}))
            answer = await self.ws.receive_str()
        except (TimeoutError, aiohttp.ClientError, AssertionError, TypeError, OSError):
            return False
        if not answer.startswith("40"):
            await self.ws.close()
            return False
        self.reader = asyncio.create_task(self._read())
        return True

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            if message.data == "2":
                await self.ws.send_str("3")
            elif message.data.startswith("42"):
                name, data = json.loads(message.data[2:])[:2]
                run_id = data.get("run_id")
                if name == "run.started" and run_id not in self.started:
                    self.started[run_id] = time.monotonic()
                if run_id is not None and "seq" in data:
                    self.seqs.setdefault(run_id, set()).add(data["seq"])

    async def drop(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()


async def connect_many(http, ws_url: str, token: str, count: int, timeout: float) -> tuple[list[Phone], float]:
    """Connect `count` phones, HANDSHAKES_IN_FLIGHT at a time; returns the connected ones and the seconds taken."""
    gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    phones = [Phone() for _ in range(count)]

    async def one(phone: Phone) -> bool:
        async with gate:
            return await phone.connect(http, ws_url, token)

    began = time.monotonic()
    tasks = [asyncio.create_task(one(p)) for p in phones]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    took = time.monotonic() - began
    return [p for p, t in zip(phones, tasks, strict=True) if t in done and not t.cancelled() and t.result()], took


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def timed(http, method: str, url: str, **kwargs) -> tuple[float, dict]:
    """One API call and its duration; retried once when a kept-alive connection turns out closed."""
    for attempt in (1, 2):
        began = time.monotonic()
        try:
            async with http.request(method, url, **kwargs) as response:
                body = await response.json(content_type=None)
                if response.status >= 400:
                    raise RuntimeError(f"{method} {url}: {response.status} {body}")
            return time.monotonic() - began, body
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def ladder(model: str, base: str, master_pid: int, steps: list[int], school_id: int, principal: str,
                 teacher: str, connect_timeout: float) -> tuple[list[dict], list[Phone]]:
    ws_url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    auth = {"Authorization": f"Bearer {principal}"}
    rows: list[dict] = []
    phones: list[Phone] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False)) as http, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as api:
        await timed(api, "GET", base + "/api/v1/me", headers=auth)
        await cancel_active(api, base, auth, school_id)  # an earlier model's storm may have left one
        idle_rss = worker_rss_mb(master_pid)
        for target in steps:
            server_cpu, client_cpu = worker_cpu_seconds(master_pid), time.process_time()
            added, took = await connect_many(http, ws_url, teacher, target - len(phones), connect_timeout)
            # Who limits the connection rate: CPU per new connection in the server and in this client.
            server_ms = (worker_cpu_seconds(master_pid) - server_cpu) * 1000 / max(len(added), 1)
            client_ms = (time.process_time() - client_cpu) * 1000 / max(len(added), 1)
            phones += added
            await asyncio.sleep(1.0)
            try:
                me_time = statistics.median([(await timed(api, "GET", base + "/api/v1/me", headers=auth,
                                                          timeout=aiohttp.ClientTimeout(total=30)))[0]
                                             for _ in range(3)])
            except (TimeoutError, aiohttp.ClientError):
                me_time = float("inf")
            try:
                post_time, run = await timed(api, "POST", base + "/api/v1/runs", headers=auth,
                                             timeout=aiohttp.ClientTimeout(total=30),
                                             json={"school_id": school_id, "playbook": "lockdown", "mode": "drill"})
                returned, run_id = time.monotonic(), run["id"]
            except (TimeoutError, aiohttp.ClientError):
                post_time, run_id, returned = float("inf"), None, time.monotonic()
            deadline = returned + 30
            while run_id and time.monotonic() < deadline and sum(run_id in p.started for p in phones) < len(phones):
                await asyncio.sleep(0.05)
            latencies = [max(0.0, p.started[run_id] - returned) for p in phones if run_id in p.started]
            rows.append({"model": model, "target": target, "connected": len(phones),
                         "rate": len(added) / took if took else 0.0,
                         "server_ms": server_ms, "client_ms": client_ms, "got": len(latencies),
                         "p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)
                         if len(latencies) == len(phones) else float("inf"),
                         "post": post_time, "me": me_time, "rss": worker_rss_mb(master_pid), "idle_rss": idle_rss})
            print_row(rows[-1])
            if run_id:  # a starved server (the threaded model) may never answer
                with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                    await timed(api, "POST", f"{base}/api/v1/runs/{run_id}/cancel", headers=auth,
                                json={"reason": "benchmark step over"}, timeout=aiohttp.ClientTimeout(total=30))
        for phone in phones:
            await phone.drop()
    return rows, phones


async def cancel_active(api, base: str, auth: dict, school_id: int) -> None:
    _, page = await timed(api, "GET", base + "/api/v1/runs", headers=auth,
                          params={"school_id": school_id, "state": "active"})
    for run in page["runs"]:
        await timed(api, "POST", f"{base}/api/v1/runs/{run['id']}/cancel", headers=auth,
                    json={"reason": "benchmark: a new step"})


async def storm(base: str, school_id: int, principal: str, teacher: str, count: int) -> dict:
    """Phones see a start, drop together, miss updates, reconnect at once and fill the gap from the timeline."""
    ws_url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    auth = {"Authorization": f"Bearer {principal}"}
    teacher_auth = {"Authorization": f"Bearer {teacher}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200),
                                  timeout=aiohttp.ClientTimeout(total=120)) as api:
        phones, _ = await connect_many(http, ws_url, teacher, count, 60)
        _, run = await timed(api, "POST", base + "/api/v1/runs", headers=auth,
                             json={"school_id": school_id, "playbook": "lockdown", "mode": "drill"})
        run_id = run["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(run_id in p.started for p in phones):
            await asyncio.sleep(0.05)
        await asyncio.gather(*(p.drop() for p in phones))  # the Wi-Fi drops
        for n in range(5):
            await timed(api, "POST", f"{base}/api/v1/runs/{run_id}/updates", headers=auth,
                        json={"message": f"Update {n + 1} while the Wi-Fi was down"})

        async def come_back(phone: Phone) -> bool:
            if not await phone.connect(http, ws_url, teacher):
                return False
            after = max(phone.seqs.get(run_id, {0}))
            _, page = await timed(api, "GET", f"{base}/api/v1/runs/{run_id}/timeline", headers=teacher_auth,
                                  params={"after_seq": after})
            phone.seqs.setdefault(run_id, set()).update(e["seq"] for e in page["events"])
            return True

        began = time.monotonic()
        gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)

        async def gated(phone):
            async with gate:
                return await come_back(phone)

        back = await asyncio.gather(*(gated(p) for p in phones), return_exceptions=True)
        took = time.monotonic() - began
        _, final = await timed(api, "GET", f"{base}/api/v1/runs/{run_id}", headers=auth)
        last_seq = final["last_seq"]
        await asyncio.sleep(1.0)
        complete = sum(set(range(1, last_seq + 1)) <= p.seqs.get(run_id, set()) for p in phones)
        alive, _ = await timed(api, "GET", base + "/healthz")
        for phone in phones:
            await phone.drop()
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            await timed(api, "POST", f"{base}/api/v1/runs/{run_id}/cancel", headers=auth, json={"reason": "storm over"})
    return {"phones": len(phones), "reconnected": sum(b is True for b in back), "seconds": took,
            "complete": complete, "last_seq": last_seq, "up": alive is not None}


def as_phones(coroutine, nice: int):
    """Run the phones' side (`asyncio.run(coroutine)`) in a thread of its own at a lower CPU priority.

    The phones share this machine's two cores with the server, which a real school's phones do not:
    at the same priority they take a third of the CPU the server would have on its own machine. Only
    this thread is niced (Linux nice values are per thread); the servers are started from the main
    thread and keep their priority. `nice` 0: share the CPU equally.
    """
    outcome: dict = {}

    def run() -> None:
        if nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    phones = threading.Thread(target=run, name="phones")
    phones.start()
    phones.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def print_header() -> None:
    print(f"{'model':8} {'phones':>7} {'connected':>9} {'conn/s':>7} {'srv ms':>6} {'cli ms':>6} "
          f"{'got start':>9} {'p50 s':>7} {'p99 s':>7} "
          f"{'POST /runs':>10} {'GET /me':>8} {'RSS MB':>7} {'KB/conn':>7}", flush=True)


def print_row(r: dict) -> None:
    per_conn = (r["rss"] - r["idle_rss"]) * 1024 / r["connected"] if r["connected"] else float("nan")
    p99 = "never" if r["p99"] == float("inf") else f"{r['p99']:.3f}"
    post = "timeout" if r["post"] == float("inf") else f"{r['post']:.3f}"
    print(f"{r['model']:8} {r['target']:>7} {r['connected']:>9} {r['rate']:>7.0f} {r['server_ms']:>6.2f} "
          f"{r['client_ms']:>6.2f} {r['got']:>9} {r['p50']:>7.3f} "
          f"{p99:>7} {post:>10} {r['me']:>8.3f} {r['rss']:>7.0f} {per_conn:>7.1f}", flush=True)


def login(base: str, email: str) -> str:
    import requests

    response = requests.post(base + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    response.raise_for_status()
    return response.json()["token"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ladder", default="100,1000,5000,10000")
    parser.add_argument("--threaded", default="50,150", help="steps for the former gthread model ('' to skip)")
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--auth-cache", type=float, default=None, metavar="SECONDS",
                        help="the server's LIVE_AUTH_CACHE_SECONDS; every phone shares one token, so 0 shows the "
                             "connect path as distinct phones meet it (each connect reads its token)")
    parser.add_argument("--client-nice", type=int, default=0, metavar="N",
                        help="run the phones' side at this nice value, so the server gets the CPU it would have "
                             "on a machine of its own (default 0: the phones and the server share the cores; a "
                             "niced client also reads its events later, lengthening start-to-phone)")
    parser.add_argument("--no-deflate-offer", action="store_true",
                        help="phones offer no permessage-deflate (browsers always offer it; native clients may not)")
    args = parser.parse_args()
    if args.no_deflate_offer:
        Phone.compress = 0

    limit = raise_open_file_limit()
    needed = max(int(s) for s in args.ladder.split(",")) + 100
    if limit < needed:
        raise SystemExit(f"the open-file limit is {limit}; {needed} sockets need more (ulimit -Hn, LimitNOFILE)")
    with tempfile.TemporaryDirectory(prefix="emergency-live-") as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/live.sqlite3"
        school_id, principal_email, teacher_email = seed(database_url)
        env = {"DATABASE_URL": database_url, "ENV": "test", "SECRET_KEY": "bench-secret-key-0123456789",
               "LOG_LEVEL": "WARNING", "DISPATCHER": "thread", "ALERT_PROVIDER": "console", "REDIS_URL": ""}
        if args.auth_cache is not None:
            env["LIVE_AUTH_CACHE_SECONDS"] = str(args.auth_cache)
        print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start, open-file limit {limit}, "
              f"database {database_url.split(':')[0]}, LIVE_AUTH_CACHE_SECONDS "
              f"{env.get('LIVE_AUTH_CACHE_SECONDS', 'default')}, phones at nice {args.client_nice}, "
              f"phones offer permessage-deflate: {'yes' if Phone.compress else 'no'}", flush=True)
        print(f"# {_seed.host_speed()}", flush=True)
        print_header()
        runs = [("gevent", [int(s) for s in args.ladder.split(",")])]
        if args.threaded:
            runs.append(("gthread", [int(s) for s in args.threaded.split(",")]))
        for model, steps in runs:
            served = ServedProcess(env)
            served.args = gunicorn(model, served.port)
            with served:
                principal, teacher = login(served.url, principal_email), login(served.url, teacher_email)
                timeout = args.connect_timeout if model == "gevent" else 15.0
                as_phones(ladder(model, served.url, served.process.pid, steps, school_id, principal, teacher,
                                 timeout), args.client_nice)
                if model == "gevent" and args.storm:
                    result = as_phones(storm(served.url, school_id, principal, teacher, args.storm),
                                       args.client_nice)
                    print(f"# reconnect storm: {result['phones']} phones dropped, {result['reconnected']} reconnected "
                          f"and filled their gap in {result['seconds']:.2f} s; {result['complete']} hold the full "
                          f"timeline (seq 1..{result['last_seq']}); server up: {result['up']}", flush=True)
        print(f"# load average {os.getloadavg()[0]:.1f} at the end", flush=True)


if __name__ == "__main__":
    main()
