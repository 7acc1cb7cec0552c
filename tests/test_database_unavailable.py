"""The database down is a 503 with Retry-After, never a 500, and a retried check-in is never lost."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from emergency.accountability.models import Checkin
from emergency.app import create_app
from emergency.db import db

# Nothing listens on port 1: every connection is refused at once.
REFUSED = "postgresql+psycopg://postgres@127.0.0.1:1/emergency_nowhere"


@pytest.fixture
def unreachable_app(make_config):
    application = create_app(make_config(DATABASE_URL=REFUSED))
    yield application
    application.extensions["db"]["engine"].dispose()


def test_a_refused_connection_is_a_503_with_retry_after(unreachable_app):
    response = unreachable_app.test_client().get("/api/v1/me", headers={"Authorization": "Bearer some-token"})

    assert response.status_code == 503
    assert response.get_json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def test_a_login_while_the_database_is_down_is_a_503(unreachable_app):
    response = unreachable_app.test_client().post("/api/v1/auth/login",
                                                  json={"email": "a@example.org", "password": "x" * 12})

    assert response.status_code == 503 and response.headers["Retry-After"]


def test_readyz_says_what_is_down_without_the_drivers_message(unreachable_app):
    response = unreachable_app.test_client().get("/readyz")

    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
    text_ = response.get_data(as_text=True)
    assert "127.0.0.1" not in text_ and "emergency_nowhere" not in text_ and ":1" not in text_


def test_a_lost_connection_mid_request_is_a_503(client, make_school, make_person, login, monkeypatch):
    from sqlalchemy.exc import OperationalError

    headers = login(make_person("district_admin"))

    def lost(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"),
                               connection_invalidated=True)

    monkeypatch.setattr("emergency.web.authenticate", lost)
    response = client.get("/api/v1/me", headers=headers)

    assert response.status_code == 503 and response.get_json()["code"] == "database_unavailable"
    assert "server closed" not in response.get_data(as_text=True)


@pytest.mark.postgres
def test_killing_the_databases_connections_during_60_check_ins_loses_none(app, database_url, make_school, make_room,
                                                                          make_person, login, session):
    """What the console's outbox does: retry a 5xx with the same Idempotency-Key until it is answered."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (pg_terminate_backend)")
    school = make_school()
    rooms = [make_room(school, number=str(300 + n)) for n in range(60)]
    headers = login(make_person("school_admin", [school]))
    run_id = app.test_client().post("/api/v1/runs", json={"school_id": school.id, "playbook": "lockdown",
                                                          "mode": "drill"}, headers=headers).get_json()["id"]
    session.commit()
    answers: dict[int, list[int]] = {room.id: [] for room in rooms}
    start = threading.Barrier(61)

    def check_in(room_id: int) -> None:
        client, key = app.test_client(), str(uuid.uuid4())
        start.wait()
        for _ in range(60):
            response = client.post(f"/api/v1/runs/{run_id}/checkins", json={
                "room_id": room_id, "status": "all_accounted", "present": 20},
                headers={**headers, "Idempotency-Key": key})
            answers[room_id].append(response.status_code)
            if response.status_code < 500:
                return
            time.sleep(0.1)

    def kill_connections() -> None:
        """Five waves in the first half second, while the check-ins are being written; then it comes back."""
        killer = create_engine(database_url, isolation_level="AUTOCOMMIT")
        start.wait()
        with killer.connect() as connection:
            for _ in range(5):
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
                time.sleep(0.1)
        killer.dispose()

    threads = [threading.Thread(target=check_in, args=(room.id,)) for room in rooms]
    for thread in threads:
        thread.start()
    killer = threading.Thread(target=kill_connections)
    killer.start()
    for thread in threads:
        thread.join()
    killer.join()

    statuses = [code for codes in answers.values() for code in codes]
    assert all(codes and codes[-1] in (200, 201) for codes in answers.values()), answers
    assert set(statuses) <= {200, 201, 503}, sorted(set(statuses))
    assert 503 in statuses, "the connections were killed while check-ins were being written"
    session.rollback()
    db.engine().dispose()
    per_room = dict(session.execute(select(Checkin.room_id, func.count()).where(Checkin.run_id == run_id)
                                    .group_by(Checkin.room_id)).all())
    assert per_room == {room.id: 1 for room in rooms}
