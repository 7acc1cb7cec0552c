"""`emergency directory import|export` run as the real command, against the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import emergency.cli
from emergency.directory.models import Person, Room, School

from .test_csv_io import GOOD, write

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def emergency_cli(app, database_url, tmp_path):
    """Invoke `emergency ...` as a separate app on the same database as the `app` fixture."""
    env = {"DATABASE_URL": database_url, "ENV": "test", "DISPATCHER": "off",
           "PLAYBOOKS_DIR": str(REPO / "playbooks"), "COMPLIANCE_RULES": str(REPO / "rules" / "new-york.yaml"),
           "INSTANCE_PATH": str(tmp_path / "instance")}

    def invoke(*args: str):
        return CliRunner().invoke(emergency.cli.main, list(args), env=env)

    return invoke


def count(session, model) -> int:
    """Rows the command committed; the read transaction is closed again, because on SQLite every
    transaction takes the write lock and the next command would wait for it."""
    session.rollback()
    try:
        return session.scalar(select(func.count()).select_from(model))
    finally:
        session.rollback()


def test_import_then_export_round_trips(emergency_cli, session, tmp_path):
    folder = write(tmp_path / "in", **GOOD)

    imported = emergency_cli("directory", "import", str(folder))
    exported = emergency_cli("directory", "export", str(tmp_path / "out"))

    assert imported.exit_code == 0, imported.output
    assert "  people: 3 created, 0 updated, 0 unchanged" in imported.output
    assert exported.exit_code == 0, exported.output
    assert f"{tmp_path / 'out' / 'rooms.csv'}: 4 rows" in exported.output
    assert "Zoë O'Brien-Núñez" in (tmp_path / "out" / "people.csv").read_text(encoding="utf-8")
    assert count(session, Person) == 3
    again = emergency_cli("directory", "import", str(tmp_path / "out"))
    assert "  rooms: 0 created, 0 updated, 4 unchanged" in again.output


def test_dry_run_prints_the_changes_and_writes_nothing(emergency_cli, session, tmp_path):
    result = emergency_cli("directory", "import", "--dry-run", str(write(tmp_path / "in", **GOOD)))

    assert result.exit_code == 0, result.output
    assert result.output.startswith("Dry run: nothing was changed.")
    assert "  create school PCMS (Port Chester Middle School)" in result.output
    assert count(session, School) == 0


def test_failed_import_prints_every_problem_to_stderr_and_exits_1(emergency_cli, session, tmp_path):
    rooms = GOOD["rooms"] + "PAE,102,Room 102,1,classroom,many\nXX,1,,,,\n"

    result = emergency_cli("directory", "import", str(write(tmp_path / "in", **{**GOOD, "rooms": rooms})))

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "rooms.csv:6: capacity: must be a whole number of 0 or more, got 'many'",
        "rooms.csv:7: school_code: unknown school code 'XX'",
        "2 problem(s); nothing was imported.",
    ]
    assert count(session, Room) == 0


def test_import_of_a_missing_folder_fails_cleanly(emergency_cli, tmp_path):
    result = emergency_cli("directory", "import", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope'}: is not a folder" in result.stderr
