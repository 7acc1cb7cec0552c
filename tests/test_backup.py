"""docs/operations.md's backup and restore, done once: pg_dump, pg_restore into a scratch database,
and the service reads the restored runs. PostgreSQL only (TEST_DATABASE_URL)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from sqlalchemy import create_engine, make_url, text

from emergency.app import create_app, require_migrated

pytestmark = pytest.mark.postgres


@pytest.fixture
def scratch(database_url):
    """An empty database named after the test database (+ _restore), dropped afterwards."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("backups are of PostgreSQL: set TEST_DATABASE_URL")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed")
    name = f"{url.database}_restore"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def libpq(url) -> str:
    """The same database as a plain postgresql:// URL, which pg_dump and pg_restore understand."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_dump_restore_and_the_service_reads_the_restored_runs(app, client, session, database_url, scratch, tmp_path,
                                                               make_config, make_school, make_person, login):
    school = make_school()
    principal = login(make_person("school_admin", [school]))
    started = client.post("/api/v1/runs", headers=principal,
                          json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
    run_id = started.get_json()["id"]
    client.post(f"/api/v1/runs/{run_id}/all-clear", headers=principal, json={"message": "Drill over"})
    session.commit()
    dump = tmp_path / "emergency.dump"

    # The commands of docs/operations.md, "Back up" and "Restore".
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", libpq(make_url(database_url))],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq(scratch)}", str(dump)],
                   check=True, capture_output=True, timeout=120)

    restored = create_app(make_config(DATABASE_URL=scratch.render_as_string(hide_password=False)))
    try:
        require_migrated(restored)  # the restored database is at the newest migration: it serves as it is
        with restored.app_context():
            reader = restored.test_client()
            runs = reader.get(f"/api/v1/runs?school_id={school.id}", headers=principal)
            timeline = reader.get(f"/api/v1/runs/{run_id}/timeline", headers=principal)
    finally:
        restored.extensions["db"]["engine"].dispose()

    assert runs.status_code == 200, runs.get_json()
    assert [(r["id"], r["state"]) for r in runs.get_json()["runs"]] == [(run_id, "ended")]
    assert [e["type"] for e in timeline.get_json()["events"]][:1] == ["run.started"]
