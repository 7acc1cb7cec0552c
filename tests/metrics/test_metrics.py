"""GET /metrics: behind its token, and the figures move as a drill goes out, is answered and ends."""

from __future__ import annotations

import pytest
import requests

from emergency.alerts.models import Alert
from emergency.alerts.providers.base import ProviderError
from emergency.alerts.providers.instrumented import InstrumentedProvider, instrument
from emergency.metrics.exposition import serve_metrics
from tests.metrics.helpers import value
from tests.served import free_port

TOKEN = "metrics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app_overrides():
    return {"METRICS_TOKEN": TOKEN}


def scrape(client) -> str:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return response.get_data(as_text=True)


@pytest.fixture
def drill(client, make_school, make_room, make_person, login):
    school = make_school()
    make_room(school)
    principal = login(make_person("school_admin", [school]))
    teachers = [make_person("teacher", [school]) for _ in range(3)]

    def start():
        response = client.post("/api/v1/runs", headers=principal,
                               json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    return {"start": start, "principal": principal, "teachers": teachers, "school": school}


def test_metrics_need_the_token(client):
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert wrong.get_json()["code"] == "unauthorized"
    assert client.get("/metrics", headers=AUTH).status_code == 200


@pytest.mark.parametrize("app_overrides", [{}])
def test_metrics_are_off_without_a_token(client):
    response = client.get("/metrics", headers=AUTH)

    assert response.status_code == 404
    assert "METRICS_TOKEN" in response.get_json()["message"]


def test_a_drill_moves_outbox_depth_up_then_down_and_counts_sends(app, client, session, drill):
    before = scrape(client)
    assert value(before, "emergency_outbox_alerts", status="queued") == 0
    assert value(before, "emergency_outbox_oldest_due_seconds", channel="sms") == 0

    run_id = drill["start"]()
    during = scrape(client)
    queued = value(during, "emergency_outbox_alerts", channel="sms", status="queued")
    assert queued >= 3  # the teachers at least
    assert value(during, "emergency_active_runs", mode="drill") == 1
    assert value(during, "emergency_outbox_oldest_due_seconds", channel="sms") >= 0

    session.commit()
    app.extensions["dispatcher"].drain()
    after = scrape(client)
    assert value(after, "emergency_outbox_alerts", status="queued") == 0
    sent = value(after, "emergency_alert_sends_total", channel="sms", outcome="sent") - \
        value(before, "emergency_alert_sends_total", channel="sms", outcome="sent")
    assert sent == queued
    assert value(after, "emergency_provider_request_seconds_count", channel="sms") >= sent
    assert value(after, "emergency_run_last_alert_sent_seconds", run_id=run_id, mode="drill") >= 0
    assert value(after, "emergency_dispatcher_last_pass_timestamp_seconds") > 0
    assert value(after, "emergency_events_pushed_total", event="run.started") >= 1
    assert value(after, "emergency_http_request_seconds_count", method="POST", route="/api/v1/runs",
                 status="201") >= 1
    assert value(after, "emergency_db_pool_connections", state="checked_out") >= 0


def test_acknowledgement_and_accountability_figures(app, client, session, drill, login):
    run_id = drill["start"]()
    before = scrape(client)
    teacher = login(drill["teachers"][0])

    assert client.post(f"/api/v1/runs/{run_id}/ack", headers=teacher, json={}).status_code in (200, 201)
    after = scrape(client)

    assert value(after, "emergency_ack_seconds_count", mode="drill") == \
        value(before, "emergency_ack_seconds_count", mode="drill") + 1
    assert value(after, "emergency_run_acknowledgements", run_id=run_id) == 1
    assert value(after, "emergency_run_first_ack_seconds", run_id=run_id) >= 0


class Failing:
    name = "failing"

    def __init__(self, temporary: bool):
        self.temporary = temporary

    def send_sms(self, to, body, **kwargs):
        raise ProviderError("carrier down", code=30003 if not self.temporary else None, temporary=self.temporary)

    def place_call(self, to, **kwargs):
        raise ProviderError("carrier down", temporary=self.temporary)


def test_temporary_failures_count_as_retries_and_by_outcome(app, client, session, drill, monkeypatch):
    drill["start"]()
    before = scrape(client)
    dispatcher = app.extensions["dispatcher"]
    monkeypatch.setattr(dispatcher, "provider", instrument(Failing(temporary=True)))
    session.commit()

    dispatcher.run_once()
    after = scrape(client)

    errors = value(after, "emergency_alert_sends_total", channel="sms", outcome="temporary_error") - \
        value(before, "emergency_alert_sends_total", channel="sms", outcome="temporary_error")
    retries = value(after, "emergency_alert_retries_total", channel="sms") - \
        value(before, "emergency_alert_retries_total", channel="sms")
    assert errors >= 3 and retries == errors
    assert value(after, "emergency_outbox_alerts", channel="sms", status="queued") >= 3


def test_the_wrapper_passes_everything_else_through():
    class Inner:
        name = "inner"
        sent = ["x"]

        def fetch_status(self, channel, sid):
            return "delivered", None

    wrapped = instrument(Inner())
    assert isinstance(wrapped, InstrumentedProvider) and instrument(wrapped) is wrapped
    assert wrapped.name == "inner" and wrapped.sent == ["x"]
    assert wrapped.fetch_status("sms", "SM1") == ("delivered", None)


def test_live_connections_gauge_follows_sockets(app, client, drill):
    socketio = app.extensions["socketio"]
    token = drill["principal"]["Authorization"][7:]
    before = value(scrape(client), "emergency_socket_connections")

    live = socketio.test_client(app, auth={"token": token})
    assert live.is_connected()
    assert value(scrape(client), "emergency_socket_connections") == before + 1
    live.disconnect()
    assert value(scrape(client), "emergency_socket_connections") == before


def test_a_process_without_http_serves_metrics_on_its_port(app, session, drill):
    drill["start"]()
    session.commit()
    port = free_port()
    server = serve_metrics(app, port, host="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        response = requests.get(url, headers=AUTH, timeout=5)
        assert response.status_code == 200
        assert value(response.text, "emergency_outbox_alerts", status="queued") >= 3
    finally:
        server.shutdown()


def test_outbox_gauges_ignore_final_alerts(app, client, session, drill):
    drill["start"]()
    session.query(Alert).update({"status": "delivered"})
    session.commit()

    text = scrape(client)

    assert value(text, "emergency_outbox_alerts") == 0
