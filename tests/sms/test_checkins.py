"""SMS check-ins and calls for help end to end: grammar, recording, replies, refusals."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from emergency.accountability.models import Checkin, RoomStatus, StaffStatus
from emergency.alerts.models import Alert
from emergency.runs.models import Run
from emergency.sms.checkins import NO_RUN, handle
from emergency.sms.grammar import HELP_TEXT
from emergency.sms.replies import classify_reply
from tests.accountability.test_checkins import world_fixture  # noqa: F401


def text(session, world, sender, body: str, run_id: int | None):
    run = session.get(Run, run_id) if run_id else None
    return handle(session, sender, classify_reply(body), run)


GOOD_SAMPLES = [
    ("204 22 0 1", 22, 0, 1),
    ("IN 204 P22 M0 I1", 22, 0, 1),
    ("in 204 p22", 22, 0, 0),
    ("204: 20 2", 20, 2, 0),
    ("IN SCIENCE P19 M1", 19, 1, 0),
]


def test_good_check_in_is_recorded_and_read_back(world, session):
    run_id = world.start()
    for body, present, missing, injured in GOOD_SAMPLES:
        reply = text(session, world, world.teacher, body, run_id)
        row = session.scalar(select(RoomStatus).where(RoomStatus.run_id == run_id)
                             .execution_options(populate_existing=True))
        assert (row.room_id, row.present, row.missing, row.injured) == (world.room.id, present, missing, injured)
        assert row.status == ("students_missing" if missing else "all_accounted")
        assert reply == f"Recorded: Room 204: {present} present, {missing} missing, {injured} injured", body
    assert set(session.scalars(select(Checkin.channel).where(Checkin.run_id == run_id))) == {"sms"}


def test_extra_and_absent_are_read_back_too(world, session):
    run_id = world.start()

    reply = text(session, world, world.teacher, "IN 204 P22 M0 I0 E2 A3", run_id)

    assert reply == "Recorded: Room 204: 22 present, 0 missing, 0 injured, 2 extra, 3 absent"


BAD_SAMPLES = [
    ("204 22 -1", "counts cannot be negative"),
    ("IN 204 M2", "missing present count"),
    ("IN 204 P22 Zed", "unknown tag"),
    ("204 22abc", "whole numbers"),
]


def test_malformed_check_in_gets_the_reason_and_the_help_text(world, session):
    run_id = world.start()
    for body, reason in BAD_SAMPLES:
        reply = text(session, world, world.teacher, body, run_id)

        assert reply.startswith("Not recorded: ") and reason in reply and reply.endswith(HELP_TEXT), body
        assert "Zed" not in reply
    assert session.scalar(select(Checkin.id)) is None


def test_unknown_room_is_a_short_error_that_does_not_echo_the_room(world, session):
    run_id = world.start()

    reply = text(session, world, world.teacher, "IN ZEDZEBRA P3", run_id)

    assert reply.startswith("Not recorded: that room is not a room of Port Chester Middle School.")
    assert "ZEDZEBRA" not in reply.upper()
    assert session.scalar(select(Checkin.id)) is None


def test_counts_beyond_the_sane_maximum_are_refused(world, session):
    run_id = world.start()

    reply = text(session, world, world.teacher, "204 9000", run_id)

    assert reply.startswith("Not recorded:") and "5000" in reply


def test_a_number_that_is_not_staff_of_the_school_is_refused(world, session):
    run_id = world.start()

    reply = text(session, world, world.outsider, "204 22 0 0", run_id)

    assert reply == "You are not on the staff of Port Chester Middle School."
    assert session.scalar(select(Checkin.id)) is None


def test_partners_get_no_reply(world, session):
    run_id = world.start(mode="real")

    assert text(session, world, world.partner, "204 22 0 0", run_id) is None
    assert text(session, world, world.partner, "HELP", run_id) is None


def test_no_active_run(world, session):
    assert text(session, world, world.teacher, "204 22 0 0", None) == NO_RUN


def test_late_sms_check_in_says_so(world, session):
    run_id = world.start()
    world.all_clear(run_id)

    reply = text(session, world, world.teacher, "204 22 0 0", run_id)

    assert reply == "Recorded (late): Room 204: 22 present, 0 missing, 0 injured"


def test_sms_check_in_pushes_like_the_app(world, session, pushes):
    run_id = world.start()

    text(session, world, world.teacher, "204 22 1 0", run_id)

    assert {"checkin.recorded", "accountability.updated"} <= set(pushes.names())


def test_help_by_sms_records_the_status_and_alerts_the_admins(world, session, caplog):
    caplog.set_level(logging.DEBUG)
    run_id = world.start()

    reply = text(session, world, world.teacher, "HELP", run_id)

    assert reply.startswith("Recorded: you need help.")
    status = session.get(StaffStatus, (run_id, world.teacher.id))
    assert status.status == "need_help" and status.channel == "sms"
    help_alerts = session.scalars(select(Alert).where(Alert.occasion == "help")).all()
    assert [a.recipient_name for a in help_alerts] == ["Pat Principal"]
    assert world.teacher.mobile not in "\n".join(r.getMessage() for r in caplog.records)


def test_webhook_hands_check_ins_to_accountability(world, session):
    inbound = pytest.importorskip("emergency.sms.inbound")
    run_id = world.start()  # the drill alert gives the teacher's number an active run

    reply = inbound.handle_inbound_sms(session, world.teacher.mobile, "IN 204 P21 M1 I0", "SM-test-1")

    assert reply == "Recorded: Room 204: 21 present, 1 missing, 0 injured"
    assert session.get(RoomStatus, (run_id, world.room.id)).missing == 1
