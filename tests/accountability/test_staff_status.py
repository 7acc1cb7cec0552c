"""'I am safe' and 'I need help': the latest status per person, and the urgent alert to admins and partners."""

from __future__ import annotations

from sqlalchemy import select

from emergency.accountability.models import StaffStatus
from emergency.alerts.models import SKIPPED, Alert, OptOut
from emergency.runs.models import RunEvent
from tests.accountability.test_checkins import world_fixture  # noqa: F401


def say(world, run_id, who, **body):
    return world.client.post(f"/api/v1/runs/{run_id}/status", json=body, headers=world.h(who))


def help_alerts(session, run_id):
    return session.scalars(select(Alert).where(Alert.run_id == run_id, Alert.occasion == "help")
                           .order_by(Alert.id)).all()


def test_need_help_in_a_drill_alerts_the_school_admins_by_sms(world, session, pushes):
    run_id = world.start()

    response = say(world, run_id, world.teacher, status="need_help", note="Zed Zebra is hurt")

    assert response.status_code == 200 and response.get_json()["status"] == "need_help"
    alerts = help_alerts(session, run_id)
    assert [(a.recipient_name, a.channel, a.priority) for a in alerts] == [("Pat Principal", "sms", 0)]
    assert alerts[0].body == ("DRILL - THIS IS A DRILL. URGENT: Tess Teacher needs help (204 Science). "
                              "Port Chester Middle School.")
    event = session.scalar(select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.type == "staff.status"))
    assert alerts[0].event_seq == event.seq
    assert "Zed" not in repr(event.payload) and "staff.status" in pushes.names()


def test_need_help_in_a_real_run_also_alerts_partners_by_sms_and_voice(world, session, pushes):
    run_id = world.start(mode="real")

    say(world, run_id, world.teacher2, status="need_help", location="gym")

    alerts = help_alerts(session, run_id)
    assert sorted((a.recipient_name, a.channel) for a in alerts) == [
        ("Officer Obi", "sms"), ("Officer Obi", "voice"), ("Pat Principal", "sms")]
    assert all(a.body == "URGENT: Theo Teacher needs help (GYM Gym). Port Chester Middle School." for a in alerts)
    assert all(world.teacher2.mobile not in a.body for a in alerts)
    partner_push = next(p for p in pushes.pushes if p.name == "staff.status").partner_data
    assert partner_push is not None and "mobile" not in repr(partner_push)


def test_opted_out_admin_is_called_instead(world, session):
    session.add(OptOut(number=world.principal.mobile, keyword="STOP"))
    session.commit()
    run_id = world.start()

    say(world, run_id, world.teacher, status="need_help")

    assert sorted((a.channel, a.status) for a in help_alerts(session, run_id)) == [("sms", SKIPPED),
                                                                                   ("voice", "queued")]


def test_latest_status_per_person_is_kept_and_listed(world, session):
    run_id = world.start()

    say(world, run_id, world.teacher, status="need_help")
    say(world, run_id, world.teacher2, status="safe")
    say(world, run_id, world.teacher, status="safe")
    say(world, run_id, world.nurse, status="need_help")

    rows = session.scalars(select(StaffStatus).where(StaffStatus.run_id == run_id)).all()
    assert {r.person_id: r.status for r in rows} == {world.teacher.id: "safe", world.teacher2.id: "safe",
                                                     world.nurse.id: "need_help"}
    board = world.client.get(f"/api/v1/runs/{run_id}/status", headers=world.h(world.principal)).get_json()
    assert (board["safe"], board["need_help"]) == (2, 1)
    rollup = world.rollup(run_id).get_json()
    assert [s["person"]["name"] for s in rollup["staff_needing_help"]] == ["Nina Nurse"]


def test_repeated_need_help_does_not_flood_the_admins(world, session):
    run_id = world.start()

    say(world, run_id, world.teacher, status="need_help")
    say(world, run_id, world.teacher, status="need_help")

    assert len(help_alerts(session, run_id)) == 1


def test_need_help_check_in_alerts_the_admins_once(world, session):
    run_id = world.start()

    world.check_in(run_id, status="need_help", present=3)
    world.check_in(run_id, status="need_help", present=4)

    alerts = help_alerts(session, run_id)
    assert len(alerts) == 1 and "Tess Teacher needs help (204 Science)" in alerts[0].body


def test_partners_and_outsiders_cannot_set_a_status(world):
    run_id = world.start(mode="real")

    assert say(world, run_id, world.partner, status="safe").status_code == 403
    assert say(world, run_id, world.outsider, status="safe").status_code == 404
    assert say(world, run_id, world.teacher, status="fine").status_code == 422
    assert say(world, run_id, world.teacher, status="safe", location="Mars").status_code == 422
