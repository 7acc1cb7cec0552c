"""The compose topology without docker: two web instances and a worker, Redis and the test database.

A drill moves the metrics (outbox depth up, then down once the worker sends; sends counted by the
worker; a live connection on the instance a phone is connected to), and with LOG_FORMAT=json every
line of every process parses, and the run's id finds its story in the web and the worker logs.
"""

from __future__ import annotations

import json
import os

import pytest
import requests
import socketio as socketio_client

from tests.metrics.helpers import value
from tests.served import ServedProcess, WorkerProcess, free_port

REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = [pytest.mark.redis,
              pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL to run the multi-instance tests")]
TOKEN = "metrics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _wait(predicate, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _scrape(url: str) -> str:
    response = requests.get(url, headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def test_a_drill_on_two_webs_and_a_worker_moves_the_metrics_and_logs_its_story(
        app, session, database_url, tmp_path, make_school, make_person, login):
    school = make_school()
    principal = login(make_person("school_admin", [school]))
    teachers = [make_person("teacher", [school]) for _ in range(3)]
    teacher = login(teachers[0])
    session.commit()

    def env(name, **extra):
        directory = tmp_path / f"metrics-{name}"
        directory.mkdir()
        return {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "ENV": "production", "DISPATCHER": "off",
                "SECRET_KEY": "test-secret-key-0123456789", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json",
                "METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(directory), **extra}

    logs = {name: tmp_path / f"{name}.log" for name in ("web1", "web2", "worker")}
    worker_port = free_port()
    with ServedProcess(env("web1"), log_path=logs["web1"]) as one, \
            ServedProcess(env("web2"), log_path=logs["web2"]) as two:
        phone = socketio_client.Client(reconnection=False)
        phone.connect(one.url, auth={"token": teacher["Authorization"][7:]}, transports=["websocket"],
                      wait_timeout=10)
        try:
            assert _wait(lambda: value(_scrape(one.url + "/metrics"), "emergency_socket_connections") == 1)
            assert value(_scrape(two.url + "/metrics"), "emergency_socket_connections") == 0

            started = requests.post(two.url + "/api/v1/runs", headers={**principal, "X-Request-ID": "drill-start"},
                                    json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"},
                                    timeout=10)
            assert started.status_code == 201, started.text
            run_id = started.json()["id"]
            queued = value(_scrape(one.url + "/metrics"), "emergency_outbox_alerts", channel="sms", status="queued")
            assert queued >= len(teachers)  # up: nobody sends yet

            worker_env = env("worker", METRICS_PORT=str(worker_port))
            with WorkerProcess(worker_env, log_path=logs["worker"]):
                assert _wait(lambda: value(_scrape(one.url + "/metrics"), "emergency_outbox_alerts",
                                           status="queued") == 0), "the worker did not empty the outbox"
                worker = f"http://127.0.0.1:{worker_port}/metrics"
                assert _wait(lambda: value(_scrape(worker), "emergency_alert_sends_total", channel="sms",
                                           outcome="sent") >= queued)
                assert value(_scrape(worker), "emergency_dispatcher_last_pass_timestamp_seconds") > 0
            assert value(_scrape(two.url + "/metrics"), "emergency_http_request_seconds_count",
                         route="/api/v1/runs", method="POST", status="201") == 1
        finally:
            phone.disconnect()

    lines = {name: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
             for name, path in logs.items()}
    for name, parsed in lines.items():
        assert parsed, f"{name} logged nothing"
        assert all({"time", "level", "logger", "message"} <= set(line) for line in parsed)
    story = {name: [line for line in parsed if line.get("run_id") == run_id] for name, parsed in lines.items()}
    assert any(line.get("request_id") == "drill-start" for line in story["web2"])
    assert len(story["worker"]) >= len(teachers) and all(line.get("alert_id") for line in story["worker"])
    everything = "".join(path.read_text() for path in logs.values())
    assert all(t.mobile not in everything for t in teachers)  # production: masked to the last four digits
