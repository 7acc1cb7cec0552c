"""More than one instance: events published by any process reach clients of any other, through Redis."""

import os
import threading

import pytest
import requests
import socketio as socketio_client

from tests.served import ServedProcess, WorkerProcess

REDIS_URL = os.environ.get("TEST_REDIS_URL")
pytestmark = [pytest.mark.redis,
              pytest.mark.skipif(not REDIS_URL, reason="set TEST_REDIS_URL to run the multi-instance tests")]


def _env(database_url, **extra):
    return {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "ENV": "test", "DISPATCHER": "off",
            "SECRET_KEY": "test-secret-key-0123456789", "LOG_LEVEL": "WARNING", **extra}


def _listen(url, token, names):
    """A real Socket.IO client on `url`; returns (client, {event name: [payloads]}, arrival event)."""
    received = {name: [] for name in names}
    arrived = threading.Event()
    sio = socketio_client.Client(reconnection=False)
    for name in names:
        def handler(data, name=name):
            received[name].append(data)
            arrived.set()
        sio.on(name, handler)
    sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return sio, received, arrived


def _wait(predicate, timeout=15.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_event_from_one_instance_reaches_a_client_of_another(app, session, database_url, make_school, make_person,
                                                          make_partner, login):
    school = make_school()
    principal = login(make_person("school_admin", [school]))
    teacher = login(make_person("teacher", [school]))
    partner = login(make_partner([school]))
    session.commit()
    env = _env(database_url)
    with ServedProcess(env) as one, ServedProcess(env) as two:
        teacher_client, teacher_got, _ = _listen(one.url, teacher["Authorization"][7:],
                                                 ["run.started", "run.ended", "alert.delivery"])
        admin_client, admin_got, _ = _listen(one.url, principal["Authorization"][7:], ["alert.delivery"])
        partner_client, partner_got, _ = _listen(one.url, partner["Authorization"][7:], ["run.started"])
        try:
            started = requests.post(two.url + "/api/v1/runs", headers=principal, timeout=10,
                                    json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
            assert started.status_code == 201, started.text
            run_id = started.json()["id"]
            assert _wait(lambda: teacher_got["run.started"]), "run.started did not cross instances"
            assert teacher_got["run.started"][0]["run_id"] == run_id

            # A separate worker process sends the alerts and publishes delivery counts through Redis.
            with WorkerProcess(env):
                assert _wait(lambda: admin_got["alert.delivery"], timeout=45), \
                    "alert.delivery from the worker did not arrive"  # the worker process starts first
            assert teacher_got["alert.delivery"] == []  # delivery counts go to the school's admins only

            requests.post(two.url + f"/api/v1/runs/{run_id}/all-clear", headers=principal, json={}, timeout=10)
            assert _wait(lambda: teacher_got["run.ended"])
            assert partner_got["run.started"] == []  # a drill never reaches partners
        finally:
            teacher_client.disconnect()
            admin_client.disconnect()
            partner_client.disconnect()
