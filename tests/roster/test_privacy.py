"""`emergency privacy purge` removes student-level statuses of old runs and keeps their counts."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import func, select, update

from emergency.accountability.models import Checkin
from emergency.cli import main
from emergency.roster.models import RunRoster, StudentStatus
from emergency.runs.models import Run
from emergency.timeutil import utcnow


def _statuses(session, run_id: int) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(StudentStatus).where(StudentStatus.run_id == run_id))


def test_purge_deletes_student_statuses_of_old_runs_only_and_keeps_counts(district, session, make_config, tmp_path):
    runs = []
    for _ in range(2):
        run = district.start(district.g2)
        teacher = district.teacher("G2", 1)
        roster = district.get(f"/api/v1/runs/{run}/roster/room", teacher).get_json()["students"]
        district.check_in(run, teacher, exceptions=[{"student_id": roster[0]["id"], "status": "missing"}])
        district.client.post(f"/api/v1/runs/{run}/all-clear", json={}, headers=district.h(district.principal("G2")))
        runs.append(run)
    old, recent = runs
    session.execute(update(Run).where(Run.id == old).values(ended_at=utcnow() - timedelta(days=40)))
    session.commit()
    assert _statuses(session, old) == 25 and _statuses(session, recent) == 25

    config = make_config()
    env = {"DATABASE_URL": config.DATABASE_URL, "ENV": "test", "PLAYBOOKS_DIR": config.PLAYBOOKS_DIR,
           "COMPLIANCE_RULES": config.COMPLIANCE_RULES, "INSTANCE_PATH": str(tmp_path / "cli")}
    session.rollback()
    result = CliRunner(env=env).invoke(main, ["privacy", "purge", "--older-than", "30"], catch_exceptions=False)
    assert result.exit_code == 0 and "Deleted 25 student-level statuses" in result.output

    assert _statuses(session, old) == 0 and _statuses(session, recent) == 25
    assert session.scalar(select(func.count()).select_from(RunRoster).where(RunRoster.run_id == old)) == 0
    checkin = session.scalar(select(Checkin).where(Checkin.run_id == old))
    assert (checkin.present, checkin.missing) == (24, 1)  # the drill record keeps its numbers
    counts = district.get(f"/api/v1/runs/{old}/roster", district.principal("G2")).get_json()
    assert counts["counts"]["students"] == 0 and counts["students"] == []
