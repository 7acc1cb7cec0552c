"""Benchmark: a school's rooms check in as fast as phones can, while other phones watch the board.

    .venv/bin/python bench/checkin_burst.py                       # temporary SQLite database
    .venv/bin/python bench/checkin_burst.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench \
        --reset --watchers 1000 --clients 50                      # the issue's "done when" check
    .venv/bin/python bench/checkin_burst.py --loop open --rate 500 ...   # a fixed arrival rate instead

It migrates the database, creates a school with N classrooms and N teachers (each with a bearer
token written straight to the database: 1,000 argon2 logins would measure the password hasher),
serves the app exactly as the Procfile's `web:` line says (gunicorn and its worker class; the
dispatcher inside it, or `--dispatcher worker` for the Procfile's `worker:` process), logs the
principal in, connects M watching phones (asyncio websocket clients speaking Socket.IO, in a
process of their own, each with a teacher's token), starts a lockdown drill and sends one check-in
per room:
- closed loop (`--loop closed`): N phones each send their next check-in as soon as the last returned;
- open loop (`--loop open --rate R`): check-ins arrive at R a second whatever the server does.
It prints check-ins/s, p50/p99 latency, errors, the server's CPU ms per check-in (from /proc), the
frames pushed to the watching phones by event, and how long after the last check-in returned every
watching phone had the complete roll-up (an `accountability.updated` counting every room), then
polls `GET /accountability` once. Everything is bounded by --deadline; the servers are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402


# -- watching phones: raw Socket.IO over a websocket, in a process of their own ------------------------
async def watch(http: aiohttp.ClientSession, url: str, token: str, rooms: int, state: dict, stop: asyncio.Event,
                phone: int) -> None:
    """One phone: connect, answer pings, count frames, note when the roll-up first shows every room."""
    try:
        async with http.ws_connect(url, heartbeat=None, max_msg_size=0) as ws:
            await ws.receive(timeout=60)  # the Engine.IO open packet
            await ws.send_str("40" + json.dumps({"token": token}))
            while not stop.is_set():
                try:
                    message = await ws.receive(timeout=0.5)
                except TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = message.data
                if data == "2":
                    await ws.send_str("3")
                elif data.startswith("40"):
                    state["connected"] += 1
                elif data.startswith("44"):
                    state["refused"] += 1
                    break
                elif data.startswith("42"):
                    name = data[4:data.index('"', 4)]
                    state["frames"][name] = state["frames"].get(name, 0) + 1
                    if name == "accountability.updated" and phone not in state["done_at"]:
                        event = json.loads(data[2:])[1]
                        if event["payload"]["reported_rooms"] >= rooms:
                            state["done_at"][phone] = time.time()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        state["errors"].append(type(exc).__name__)


def watchers_process(url: str, tokens: list[str], rooms: int, pipe, nice: int = 0) -> None:
    """Run the watching phones until told to stop; send (connected, then) the results through `pipe`."""
    if nice:
        os.nice(nice)
    async def run() -> None:
        state = {"connected": 0, "refused": 0, "frames": {}, "done_at": {}, "errors": []}
        stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            tasks = []
            for i, token in enumerate(tokens):
                tasks.append(asyncio.create_task(watch(http, url, token, rooms, state, stop, i)))
                if i % 50 == 49:
                    await asyncio.sleep(0.05)  # a school opening the app, not a SYN flood
            loop = asyncio.get_running_loop()
            settle = time.monotonic() + 240  # a loaded machine connects a thousand slowly
            while state["connected"] + state["refused"] + len(state["errors"]) < len(tokens) \
                    and time.monotonic() < settle:
                await asyncio.sleep(0.1)
            pipe.send(("connected", state["connected"]))
            state["frames"].clear()  # count the burst's frames only
            await loop.run_in_executor(None, pipe.recv)  # "stop"
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        pipe.send(("done", state))

    asyncio.run(run())


# -- the check-ins -----------------------------------------------------------------------------------
def checkin_body(i: int) -> dict:
    return {"status": "students_missing" if i % 17 == 0 else "all_accounted", "present": 20 + i % 7,
            "missing": 1 if i % 17 == 0 else 0, "injured": 1 if i % 50 == 0 else 0, "extra": i % 3}


async def send_checkins(base: str, run_id: int, tokens: list[str], args, deadline: float):
    """Send one check-in per token, closed or open loop; returns (latencies s, errors, last return wall time)."""
    latencies: list[float] = []
    errors: list[str] = []
    last_return = [time.time()]

    async def one(http: aiohttp.ClientSession, i: int) -> None:
        if time.monotonic() > deadline:
            errors.append("deadline")
            return
        t0 = time.perf_counter()
        try:
            async with http.post(f"{base}/api/v1/runs/{run_id}/checkins", json=checkin_body(i),
                                 headers={"Authorization": f"Bearer {tokens[i]}", "Idempotency-Key": f"bench-{i}"},
                                 timeout=aiohttp.ClientTimeout(total=30)) as response:
                detail = f"{response.status} {(await response.text())[:120]}"
                ok = response.status == 201
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok, detail = False, type(exc).__name__
        latencies.append(time.perf_counter() - t0)
        last_return[0] = time.time()
        if not ok:
            errors.append(detail)

    connector = aiohttp.TCPConnector(limit=0 if args.loop == "open" else args.clients)
    async with aiohttp.ClientSession(connector=connector) as http:
        if args.loop == "closed":
            pending = iter(range(len(tokens)))

            async def phone() -> None:
                for i in pending:
                    await one(http, i)

            await asyncio.gather(*(phone() for _ in range(args.clients)))
        else:
            start = time.monotonic()
            tasks = []
            for i in range(len(tokens)):
                delay = start + i / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(http, i)))
            await asyncio.gather(*tasks)
    return latencies, errors, last_return[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite database")
    parser.add_argument("--reset", action="store_true", help="PostgreSQL: drop and recreate the public schema first")
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--loop", choices=("closed", "open"), default="closed")
    parser.add_argument("--clients", type=int, default=50, help="closed loop: phones checking in concurrently")
    parser.add_argument("--rate", type=float, default=500.0, help="open loop: check-ins a second")
    parser.add_argument("--watchers", type=int, default=0, help="phones connected and watching the board")
    parser.add_argument("--server", choices=("procfile", "serve"), default="procfile",
                        help="procfile: the Procfile's web: line; serve: `emergency serve`")
    parser.add_argument("--dispatcher", choices=("in-process", "worker"), default="in-process",
                        help="send the drill's alerts (console provider) from the web process or a worker")
    parser.add_argument("--client-nice", type=int, default=0, metavar="N",
                        help="run the phones (watching and checking in) at this nice value, so the server gets the "
                             "cores as on a machine of its own; a diagnostic, not the issue's measurement")
    parser.add_argument("--deadline", type=float, default=300.0, help="give up after this many seconds")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a thousand sockets each side; inherited

    url, workdir = _seed.prepare_database(args.database_url, args.reset)
    tag = secrets.token_hex(4)
    t0 = time.monotonic()
    school_id, principal_email, tokens = _seed.seed(url, args.rooms, tag)
    print(_seed.host_speed())
    print(f"database: {url.split('@')[-1] if '@' in url else url}")
    print(f"seeded {args.rooms} classrooms and teachers in {time.monotonic() - t0:.1f}s")

    port = _seed.free_port()
    base = f"http://127.0.0.1:{port}"
    processes = _seed.serve(url, port, workdir, server=args.server, dispatcher=args.dispatcher)
    watchers = None
    try:
        _seed.wait_ready(base, min(deadline, time.monotonic() + 60))
        _seed.wait_for_dispatchers(url, 1, min(deadline, time.monotonic() + 60))
        http = _seed.login(base, principal_email)
        connected = 0
        if args.watchers:
            ours, theirs = multiprocessing.Pipe()
            watcher_tokens = [tokens[i % len(tokens)] for i in range(args.watchers)]
            watchers = multiprocessing.Process(target=watchers_process, daemon=True, args=(
                f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket", watcher_tokens, args.rooms, theirs,
                args.client_nice))
            watchers.start()
            t_connect = time.monotonic()
            if not ours.poll(min(300, deadline - time.monotonic())):
                raise SystemExit("the watching phones did not connect in time")
            connected = ours.recv()[1]
            seconds = time.monotonic() - t_connect
            print(f"watching phones: {connected} of {args.watchers} connected in {seconds:.1f}s "
                  f"({connected / seconds:.0f}/s)", flush=True)
            if connected < args.watchers:
                # gthread holds a thread per socket: with every thread held, the API itself stops answering.
                print("not every watching phone could connect: the serving model holds too few sockets")
                return 1
        run_id = _seed.start_drill(http, base, school_id)
        if args.client_nice:
            os.setpriority(os.PRIO_PROCESS, 0, args.client_nice)  # this thread only: the servers keep theirs

        database_before = _seed.database_cpu_seconds() if url.startswith("postgresql") else None
        cpu_before, t_burst, wall_burst = _seed.cpu_seconds(processes[0].pid), time.monotonic(), time.time()
        latencies, errors, last_return = asyncio.run(send_checkins(base, run_id, tokens, args, deadline))
        burst_seconds = time.time() - wall_burst
        cpu_ms = (_seed.cpu_seconds(processes[0].pid) - cpu_before) * 1000 / max(1, len(latencies))
        database_after = _seed.database_cpu_seconds() if database_before is not None else None

        watched = None
        if watchers is not None:
            time.sleep(min(3.0, max(0.0, deadline - time.monotonic())))  # the 2 s goal, and a margin
            ours.send("stop")
            watched = ours.recv()[1] if ours.poll(60) else None
        t_poll = time.perf_counter()
        rollup = http.get(f"{base}/api/v1/runs/{run_id}/accountability", timeout=30).json()
        rollup_ms = (time.perf_counter() - t_poll) * 1000

        ms = [x * 1000 for x in latencies]
        print(f"serving: {args.server}, dispatcher {args.dispatcher}; {args.loop} loop "
              + (f"({args.clients} phones)" if args.loop == "closed" else f"({args.rate:.0f}/s offered)"))
        print(f"check-ins: {len(latencies)} in {burst_seconds:.2f}s ({len(latencies) / burst_seconds:.0f}/s)")
        print(f"latency ms: p50={statistics.median(ms):.1f} p90={_seed.percentile(ms, 90):.1f} "
              f"p99={_seed.percentile(ms, 99):.1f} max={max(ms):.1f}")
        print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
        print(f"server CPU: {cpu_ms:.2f} ms per check-in (web process, user+system, over "
              f"{time.monotonic() - t_burst:.1f}s)")
        if database_before is not None and database_after is not None:
            print(f"database CPU: {(database_after - database_before) * 1000 / max(1, len(latencies)):.2f} ms per "
                  "check-in (this machine's PostgreSQL processes, the drill's texts included)")
        print(f"roll-up: GET accountability {rollup_ms:.0f} ms, reported {rollup.get('reported_rooms')} rooms")
        complete = True
        if watched is not None:
            frames = watched["frames"]
            done = sorted(at - last_return for at in watched["done_at"].values())
            print(f"frames pushed to {connected} watching phones: {sum(frames.values())} "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(frames.items()))}); "
                  f"{sum(frames.values()) / max(1, connected):.1f} a phone")
            complete = len(done) == connected == args.watchers
            if done:
                print(f"complete roll-up on {len(done)} of {connected} phones: p50 {statistics.median(done):+.2f}s, "
                      f"last {done[-1]:+.2f}s after the last check-in returned"
                      + (f"; watcher errors: {len(watched['errors'])}" if watched["errors"] else ""))
                complete = complete and done[-1] < 2.0
            else:
                print("complete roll-up on no phone")
        elif args.watchers:
            complete = False
        rate = len(latencies) / burst_seconds
        goal = not errors and rate >= 300 and _seed.percentile(ms, 99) < 250 and complete
        print("goal (>= 300/s, p99 < 250 ms, no errors, every phone complete within 2 s):",
              "met" if goal else "NOT met")
        return 0 if goal else 1
    finally:
        if watchers is not None and watchers.is_alive():
            watchers.terminate()
        _seed.stop(processes)
        print(f"server logs: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
