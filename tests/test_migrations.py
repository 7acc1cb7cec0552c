"""The Alembic migrations build exactly the models' schema, and the app knows when they have not run."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

import emergency.models  # noqa: F401 - every table on Base.metadata
from emergency.app import create_app
from emergency.db import Base
from emergency.migrate import current_revisions, head_revisions, is_current, upgrade


@pytest.fixture
def empty_sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"


def test_migrations_build_exactly_the_models_schema(database_url):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()

    assert diff == []


def test_migrations_on_a_new_sqlite_database_match_the_models(empty_sqlite_url):
    upgrade(empty_sqlite_url)

    engine = create_engine(empty_sqlite_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_empty_database_is_not_current_until_upgraded(empty_sqlite_url):
    engine = create_engine(empty_sqlite_url)
    try:
        assert current_revisions(engine) == set()
        assert is_current(engine) is False

        upgrade(empty_sqlite_url)

        assert current_revisions(engine) == head_revisions(empty_sqlite_url)
        assert is_current(engine) is True
    finally:
        engine.dispose()


def test_upgrade_creates_the_folder_of_a_new_sqlite_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'not' / 'yet' / 'there.sqlite3'}"

    upgrade(url)

    assert (tmp_path / "not" / "yet" / "there.sqlite3").exists()


def test_upgrade_twice_is_harmless(empty_sqlite_url):
    upgrade(empty_sqlite_url)
    upgrade(empty_sqlite_url)

    engine = create_engine(empty_sqlite_url)
    try:
        assert is_current(engine)
    finally:
        engine.dispose()


def readyz(config):
    """GET /readyz of an app built from `config`, its engine disposed after."""
    app = create_app(config)
    try:
        return app.test_client().get("/readyz")
    finally:
        app.extensions["db"]["engine"].dispose()


def test_readyz_is_503_on_an_unmigrated_database(make_config, empty_sqlite_url):
    response = readyz(make_config(DATABASE_URL=empty_sqlite_url))

    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "not migrated"
    assert "emergency db upgrade" in body["detail"]


def test_readyz_is_503_when_the_database_is_unreachable(make_config, tmp_path):
    (tmp_path / "a-directory.sqlite3").mkdir()  # SQLite cannot open a directory as a database
    response = readyz(make_config(DATABASE_URL=f"sqlite:///{tmp_path / 'a-directory.sqlite3'}"))

    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_readyz_is_200_on_the_migrated_database(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "migrations": "current", "playbooks": "ok"}


def test_healthz_is_200_without_touching_the_database(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(make_config):
    app = create_app(make_config(REDIS_URL="redis://:hunter2hunter2@127.0.0.1:1/0"))
    with app.app_context():
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["redis"] == "unreachable" and body["database"] == "ok"
    assert "hunter2" not in response.get_data(as_text=True)
    assert "127.0.0.1" not in response.get_data(as_text=True) and response.headers["Retry-After"]


def test_readyz_is_503_when_a_standard_response_action_has_no_playbook(make_config, tmp_path):
    """An instance that cannot start a lockdown is not ready, though it keeps serving the runs it has."""
    (tmp_path / "playbooks").mkdir()
    response = readyz(make_config(PLAYBOOKS_DIR=str(tmp_path / "playbooks")))

    assert response.status_code == 503
    body = response.get_json()
    assert body["playbooks"] == "no playbook for hold, secure, lockdown, evacuate, shelter"
    assert str(tmp_path) not in response.get_data(as_text=True)  # the directory goes to the log only
