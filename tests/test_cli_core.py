"""The `emergency` command's core: migrations, passwords, serve's safety check, and config errors."""

from __future__ import annotations

from dataclasses import fields

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

import emergency.cli
from emergency.config import Config
from emergency.directory.models import Person, School
from emergency.migrate import is_current, upgrade

PASSWORD = "a long enough password"


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


@pytest.fixture
def run(tmp_path, db_url):
    """run(*args, input=None, **env) -> click Result, with a clean environment of settings."""

    def invoke(*args, input=None, **env):
        environ = {f.name: None for f in fields(Config)}  # nothing leaks in from the real environment
        environ.update(ENV="test", DATABASE_URL=db_url, INSTANCE_PATH=str(tmp_path / "instance"),
                       DISPATCHER="off", PLAYBOOKS_DIR=str(tmp_path / "no-playbooks"))
        environ.update(env)
        return CliRunner().invoke(emergency.cli.main, list(args), input=input, env=environ)

    return invoke


@pytest.fixture
def teacher_email(db_url) -> str:
    """A migrated database with one teacher in it."""
    upgrade(db_url)
    engine = create_engine(db_url)
    with Session(engine) as session:
        school = School(code="PCHS", name="Port Chester High")
        session.add(Person(name="Ana Teacher", role="teacher", email="ana@example.org", schools=[school]))
        session.commit()
    engine.dispose()
    return "ana@example.org"


def assert_one_clear_line(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_db_upgrade_migrates_a_new_database(run, db_url):
    result = run("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert "head" in result.output
    engine = create_engine(db_url)
    try:
        assert is_current(engine)
    finally:
        engine.dispose()


def test_db_upgrade_with_default_settings_creates_the_instance_folder(run, tmp_path):
    result = run("db", "upgrade", DATABASE_URL=None)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance" / "emergency.sqlite3").exists()


def test_set_password_from_stdin_lets_the_user_log_in(run, teacher_email, make_config, db_url):
    from emergency.app import create_app

    result = run("users", "set-password", "  ANA@example.org ", "--password-stdin", input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert "Password set for ana@example.org." in result.output
    app = create_app(make_config(DATABASE_URL=db_url))
    try:
        response = app.test_client().post("/api/v1/auth/login",
                                          json={"email": teacher_email, "password": PASSWORD})
    finally:
        app.extensions["db"]["engine"].dispose()
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["name"] == "Ana Teacher"


def test_set_password_for_unknown_email_fails_clearly(run, teacher_email):
    result = run("users", "set-password", "nobody@example.org", "--password-stdin", input=PASSWORD + "\n")

    line = assert_one_clear_line(result)
    assert "nobody@example.org" in line
    assert "No person or partner" in line


def test_set_password_refuses_a_short_password(run, teacher_email):
    result = run("users", "set-password", teacher_email, "--password-stdin", input="short\n")

    line = assert_one_clear_line(result)
    assert "at least 10 characters" in line


def test_set_password_on_an_unmigrated_database_says_to_upgrade(run):
    result = run("users", "set-password", "ana@example.org", "--password-stdin", input=PASSWORD + "\n")

    line = assert_one_clear_line(result)
    assert "emergency db upgrade" in line


def test_serve_refuses_an_unmigrated_database(run, monkeypatch):
    def must_not_serve(*args, **kwargs):
        raise AssertionError("serve started on an unmigrated database")

    monkeypatch.setattr(emergency.cli, "exec_server", must_not_serve)

    result = run("serve")

    line = assert_one_clear_line(result)
    assert "not migrated" in line
    assert "emergency db upgrade" in line


def test_config_error_is_one_sentence_and_fails(run):
    result = run("serve", ENV="production", SECRET_KEY=None)

    line = assert_one_clear_line(result)
    assert "SECRET_KEY is required in production" in line
    assert line.endswith(".")


def test_commands_that_serve_nothing_need_no_secret_key(run):
    result = run("db", "upgrade", ENV="production", SECRET_KEY=None)

    assert result.exit_code == 0, result.output
    assert "SECRET_KEY" not in result.output


DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_serve_runs_the_procfiles_server_gunicorn_with_one_gevent_worker(run, monkeypatch, tmp_path):
    started = {}
    monkeypatch.setattr(emergency.cli, "exec_server", lambda command, env: started.update(command=command, env=env))

    result = run("serve", "--demo", "--port", "5123", "--connections", "12000", PLAYBOOKS_DIR=None)

    assert result.exit_code == 0, result.output
    command = started["command"]
    assert command[1:3] == ["-m", "gunicorn"]
    assert command[command.index("-k") + 1] == "gevent" and command[command.index("-w") + 1] == "1"
    assert command[command.index("--worker-connections") + 1] == "12000"
    assert command[-1] == "emergency.wsgi:app" and "127.0.0.1:5123" in command
    assert started["env"]["PUBLIC_BASE_URL"] == "http://127.0.0.1:5123"
    assert started["env"]["DATABASE_URL"].startswith("sqlite:///")


@pytest.mark.parametrize("command", [["serve"], ["worker"]])
def test_a_dead_redis_at_start_up_is_one_clear_line(run, db_url, monkeypatch, command):
    upgrade(db_url)
    monkeypatch.setattr(emergency.cli, "exec_server", lambda *a: pytest.fail("served without Redis"))

    result = run(*command, REDIS_URL=DEAD_REDIS)

    line = assert_one_clear_line(result)
    assert "Redis at REDIS_URL (redis://127.0.0.1:1/0) is unreachable" in line
