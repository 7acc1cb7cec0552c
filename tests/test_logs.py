"""Structured logs: one JSON object per line, the ids of the emergency on each, phones masked in production."""

from __future__ import annotations

import json
import logging
import logging.config
import subprocess
import sys

from emergency import logs
from tests.conftest import REPO


def test_each_line_is_a_json_object_with_the_ids_of_the_emergency(app, client, session, json_lines, make_school,
                                                                  make_person, login):
    school = make_school()
    principal = login(make_person("school_admin", [school]))
    make_person("teacher", [school])
    started = client.post("/api/v1/runs", headers={**principal, "X-Request-ID": "req-42"},
                          json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
    run_id = started.get_json()["id"]
    session.commit()
    app.extensions["dispatcher"].drain()
    client.get(f"/api/v1/runs/{run_id}/timeline", headers=principal)

    lines = json_lines()
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert line["time"].endswith("Z")
    start_request = [line for line in lines if line.get("request_id") == "req-42"]
    assert start_request and all(line["run_id"] == run_id for line in start_request)
    assert start_request[-1]["school_id"] == school.id
    sends = [line for line in lines if line["logger"] == "emergency.alerts.console"]
    assert sends and all(line["run_id"] == run_id and line.get("alert_id") for line in sends)
    timeline_read = [line for line in lines if "/timeline" in line["message"]]
    assert timeline_read and timeline_read[0]["run_id"] == run_id


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id {\"json\": 1}"}).headers["X-Request-ID"]
    assert made != "bad id {\"json\": 1}" and len(made) == 32


def test_phones_are_masked_to_the_last_four_digits_when_asked():
    record = logging.LogRecord("emergency.alerts.console", logging.INFO, __file__, 1,
                               "SMS to %s: drill", ("+19145550129",), None)

    masked = json.loads(logs.formatter("json", mask=True).format(record))["message"]
    plain = json.loads(logs.formatter("json", mask=False).format(record))["message"]
    text = logs.formatter("text", mask=True).format(record)

    assert "+19145550129" not in masked and masked.endswith("0129: drill")
    assert "+19145550129" in plain
    assert "+19145550129" not in text and "0129" in text


def test_production_process_logs_json_and_masks_phones(tmp_path):
    code = ("import logging; from emergency.app import create_app; from emergency.config import Config; "
            "create_app(Config.from_env()); "
            "logging.getLogger('emergency.test').warning('call %s failed', '+19145550129'); "
            "logging.getLogger('emergency.test').error('boom', exc_info=ValueError('x'))")
    env = {"LOG_FORMAT": "json", "ENV": "production", "SECRET_KEY": "a-long-random-secret-0123456789",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=60)

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"] for line in lines][-2:] == ["call +1••••••0129 failed", "boom"]
    assert "ValueError" in lines[-1]["exc_info"]
    assert "+19145550129" not in result.stderr


def test_gunicorn_logs_use_the_same_format():
    config = logs.gunicorn_logconfig("json", mask=True)
    logging.config.dictConfig({**config, "loggers": {"emergency.test.gunicorn": config["loggers"]["gunicorn.error"]},
                               "root": {"level": "WARNING"}})
    handler = logging.getLogger("emergency.test.gunicorn").handlers[0]

    line = handler.format(logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker", (), None))

    assert json.loads(line)["message"] == "Booting worker"
