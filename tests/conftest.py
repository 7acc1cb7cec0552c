"""Fixtures shared by every test: an app on a clean database, a client, and factories.

The database is SQLite in a temporary folder, or PostgreSQL when TEST_DATABASE_URL is set.
Its schema is built once per session by the Alembic migrations (so every run also tests
them) and emptied between tests.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from emergency import logs
from emergency.app import create_app
from emergency.config import Config
from emergency.db import Base, db
from emergency.migrate import upgrade

REPO = Path(__file__).resolve().parent.parent
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
    return url


def _empty_tables(url: str) -> None:
    import emergency.models  # noqa: F401

    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        # DELETE beats TRUNCATE on tables this small (TRUNCATE rewrites every table file).
        for name in tables:
            connection.execute(text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
def make_config(database_url, tmp_path):
    def make(**overrides) -> Config:
        values = dict(ENV="test", TESTING=True, DATABASE_URL=database_url, DISPATCHER="off",
                      PLAYBOOKS_DIR=str(REPO / "playbooks"), INSTANCE_PATH=str(tmp_path / "instance"),
                      COMPLIANCE_RULES=str(REPO / "rules" / "new-york.yaml"),
                      PUBLIC_BASE_URL="http://testserver", SECRET_KEY="test-secret-key-0123456789",
                      # Every summary as it happens: coalescing has its own tests, with their own clock.
                      LIVE_SUMMARY_INTERVAL=0.0)
        values.update(overrides)
        return Config(**values)

    return make


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch):
    """Cheap argon2 parameters: the tests log in often, and the default costs 150 ms a hash."""
    from argon2 import PasswordHasher

    from emergency.accounts import service

    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(service, "_hasher", hasher)
    monkeypatch.setattr(service, "_DUMMY_HASH", hasher.hash("not-a-real-password"))


@pytest.fixture
def app_overrides() -> dict:
    """Settings for the `app` fixture; override this fixture in a module to change them."""
    return {}


@pytest.fixture
def fake_twilio():
    """A local fake of api.twilio.com (tests/fakes/fake_twilio.py)."""
    from tests.fakes.fake_twilio import FakeTwilio

    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def push_service():
    """A local fake of a browser push service (tests/fakes/fake_push.py)."""
    from tests.fakes.fake_push import FakePush

    with FakePush() as fake:
        yield fake


@pytest.fixture
def subscribe(client):
    """Register one of the fake push service's devices for a logged-in person; returns the device."""

    def do(headers: dict, push_service):
        device = push_service.new_device()
        response = client.post("/api/v1/me/push-subscriptions", headers=headers,
                               json={**device.subscription(), "user_agent": "Test phone"})
        assert response.status_code == 201, response.get_json()
        device.subscription_id = response.get_json()["id"]
        return device

    return do


def twilio_settings(fake) -> dict:
    """Settings that point the real twilio client at a FakeTwilio."""
    return dict(ALERT_PROVIDER="twilio", TWILIO_ACCOUNT_SID=fake.account_sid, TWILIO_AUTH_TOKEN=fake.auth_token,
                TWILIO_FROM_NUMBER="+15005550006", TWILIO_API_BASE=fake.base_url, SEND_TIMEOUT_SECONDS=5.0)


class ClosingClient(FlaskClient):
    """Reads each response whole and closes it, as a WSGI server does once it has sent one.

    The app queues a request's live pushes when its response is closed (realtime.socket); the
    plain test client leaves responses open until the test closes them.
    """

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


@pytest.fixture
def app(make_config, database_url, app_overrides):
    _empty_tables(database_url)
    application = create_app(make_config(**app_overrides))
    application.test_client_class = ClosingClient
    with application.app_context():
        yield application
        db.session.rollback()
    application.extensions["socket_publisher"].close()
    application.extensions["db"]["engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture
def pushes(app):
    """What the app handed to the Socket.IO server, in order."""
    return app.extensions["recorded_pushes"]


def _mobile(n: int) -> str:
    return f"+1212555{n % 10000:04d}"


@pytest.fixture
def make_school(session):
    from emergency.directory.models import School

    def make(**overrides) -> School:
        n = next(_counter)
        values = dict(code=f"S{n}", name=f"School {n}", address=f"{n} Main St",
                      timezone="America/New_York", dismissal_time="15:00")
        values.update(overrides)
        school = School(**values)
        session.add(school)
        session.commit()
        return school

    return make


@pytest.fixture
def make_room(session):
    from emergency.directory.models import Room

    def make(school, **overrides) -> Room:
        n = next(_counter)
        values = dict(school_id=school.id, number=str(100 + n), name=f"Room {100 + n}", floor="1",
                      kind="classroom", capacity=25)
        values.update(overrides)
        room = Room(**values)
        session.add(room)
        session.commit()
        return room

    return make


@pytest.fixture
def make_person(session):
    from emergency.directory.models import Person

    def make(role="teacher", schools=(), **overrides) -> Person:
        n = next(_counter)
        values = dict(name=f"Person {n}", role=role, email=f"person{n}@example.org", mobile=_mobile(n))
        values.update(overrides)
        person = Person(**values)
        person.schools = list(schools)
        session.add(person)
        session.commit()
        return person

    return make


@pytest.fixture
def make_partner(session):
    from emergency.directory.models import Partner

    def make(schools=(), **overrides) -> Partner:
        n = next(_counter)
        values = dict(agency="Port Chester PD", name=f"Officer {n}", role="police",
                      email=f"officer{n}@pd.example.org", mobile=_mobile(n))
        values.update(overrides)
        partner = Partner(**values)
        partner.schools = list(schools)
        session.add(partner)
        session.commit()
        return partner

    return make


PASSWORD = "correct horse battery"


@pytest.fixture
def login(client, session):
    """Give someone an account and log them in; returns the Authorization header."""
    from emergency.accounts.service import set_password

    def do(owner) -> dict:
        set_password(session, owner.email, PASSWORD)
        session.commit()
        response = client.post("/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD})
        assert response.status_code == 200, response.get_json()
        return {"Authorization": f"Bearer {response.get_json()['token']}"}

    return do


@pytest.fixture
def json_lines():
    """Everything `emergency.*` logs during the test, formatted as LOG_FORMAT=json formats it (unmasked)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json", mask=False))
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("emergency")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)
