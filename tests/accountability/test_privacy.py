"""Student data (NY Education Law §2-d): names purged after retention, never in logs, SMS or partner events."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from emergency.accountability.models import Checkin
from emergency.alerts.models import InboundMessage
from emergency.cli import main
from emergency.runs.models import Run
from emergency.timeutil import utcnow
from tests.accountability.test_checkins import world_fixture  # noqa: F401

NAMED = dict(status="students_missing", present=20, missing=1, injured=1, missing_students=["Zed Zebra"],
             injured_students=["Yan Yak"], note="Zed Zebra left with Yan Yak")


@pytest.fixture
def purge(make_config, tmp_path):
    """Run `emergency privacy purge` as an operator would, against the test database."""

    def run(*args: str, **env: str):
        config = make_config()
        environ = {"DATABASE_URL": config.DATABASE_URL, "ENV": "test", "PLAYBOOKS_DIR": config.PLAYBOOKS_DIR,
                   "COMPLIANCE_RULES": config.COMPLIANCE_RULES, "INSTANCE_PATH": str(tmp_path / "cli"), **env}
        return CliRunner(env=environ).invoke(main, ["privacy", "purge", *args], catch_exceptions=False)

    return run


def run_with_names(world, session, *, ended_days_ago: float | None) -> int:
    run_id = world.start()
    world.check_in(run_id, **NAMED)
    if ended_days_ago is not None:
        world.all_clear(run_id)
        run = session.get(Run, run_id)
        run.started_at -= timedelta(days=ended_days_ago)
        run.ended_at -= timedelta(days=ended_days_ago)
        session.commit()
    return run_id


@pytest.fixture
def three_runs(world, session):
    """A run that ended 40 days ago, one that ended 10 days ago, and an active one started 60 days ago."""
    old = run_with_names(world, session, ended_days_ago=40)
    recent = run_with_names(world, session, ended_days_ago=10)
    active = run_with_names(world, session, ended_days_ago=None)
    run = session.get(Run, active)
    run.started_at -= timedelta(days=60)
    session.add_all([InboundMessage(from_number="+12125550001", body="IN 204 P3 Zed Zebra missing", kind="checkin",
                                    received_at=utcnow() - timedelta(days=40)),
                     InboundMessage(from_number="+12125550001", body="IN 204 P3", kind="checkin",
                                    received_at=utcnow() - timedelta(days=1))])
    session.commit()
    return old, recent, active


def names_of(session, run_id: int) -> tuple:
    session.expire_all()
    row = session.scalar(select(Checkin).where(Checkin.run_id == run_id))
    return row.missing_students, row.injured_students, row.note, row.missing, row.injured


def test_purge_replaces_names_with_counts_in_old_ended_runs_only(world, session, three_runs, purge):
    old, recent, active = three_runs

    result = purge("--older-than", "30")

    assert result.exit_code == 0, result.output
    assert "from 1 check-ins" in result.output
    assert names_of(session, old) == (None, None, None, 1, 1)
    assert names_of(session, recent)[:2] == (["Zed Zebra"], ["Yan Yak"])
    assert names_of(session, active)[:2] == (["Zed Zebra"], ["Yan Yak"])
    bodies = sorted(session.scalars(select(InboundMessage.body)))
    assert bodies == ["", "IN 204 P3"]
    rollup = world.rollup(old).get_json()
    assert rollup["rooms"][0]["names_purged"] is True and rollup["rooms"][0]["missing_students"] == []
    assert rollup["totals"]["missing"] == 1


def test_purge_defaults_to_the_retention_setting(session, three_runs, purge):
    old, recent, active = three_runs

    result = purge(PRIVACY_RETENTION_DAYS="5")

    assert "from 2 check-ins" in result.output
    assert names_of(session, recent)[0] is None and names_of(session, active)[0] == ["Zed Zebra"]


def test_purge_twice_purges_nothing_more(session, three_runs, purge):
    purge("--older-than", "30")

    assert "from 0 check-ins" in purge("--older-than", "30").output


def test_negative_days_are_refused(purge):
    result = CliRunner().invoke(main, ["privacy", "purge", "--older-than", "-1"])

    assert result.exit_code != 0


def test_no_names_in_logs_sms_or_partner_events(world, session, pushes, caplog, json_lines):
    caplog.set_level(logging.DEBUG)
    from emergency.alerts.models import Alert
    from emergency.sms.checkins import handle
    from emergency.sms.replies import classify_reply

    run_id = world.start(mode="real")
    world.check_in(run_id, **NAMED)
    world.check_in(run_id, who=world.teacher2, status="need_help", present=2, note="Zed Zebra is with me")
    world.rollup(run_id, who=world.partner)
    world.rollup(run_id, who=world.principal)
    reply = handle(session, world.teacher, classify_reply("IN ZED P3"), session.get(Run, run_id))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    json_logged = json.dumps(json_lines())  # LOG_FORMAT=json: every line parsed, then searched
    assert "Zed" not in json_logged and "Yan" not in json_logged and run_id in {
        line.get("run_id") for line in json_lines()}
    bodies = "\n".join(session.scalars(select(Alert.body).where(Alert.run_id == run_id)))
    partner_events = repr([p.partner_data for p in pushes.pushes])
    for text in (logged, bodies, partner_events, reply):
        assert "Zed" not in text and "Yan" not in text
