"""Inbound SMS, the service behind the webhook and `emergency sms receive`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from emergency.alerts.models import Acknowledgement, InboundMessage, OptOut
from emergency.runs.service import all_clear
from emergency.sms.cli import sms
from emergency.sms.grammar import HELP_TEXT
from emergency.sms.inbound import REPLY_LIMIT, handle_inbound_sms
from tests.alerts.helpers import as_principal, start

STRANGER = "+12125550199"


def inbound(session) -> list[InboundMessage]:
    return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


@pytest.mark.parametrize("body", ["1", "OK", "ok!", " Ack ", "SAFE.", "y"])
def test_every_ack_word_acknowledges(app, session, school, principal, teacher, body):
    run = start(app, principal, school)

    reply = handle_inbound_sms(session, teacher.mobile, body, "SM1")

    assert reply == "Confirmed: Lockdown DRILL at Port Chester Middle School."
    assert session.scalar(select(Acknowledgement.person_id).where(Acknowledgement.run_id == run.id)) == teacher.id


def test_real_confirmation_does_not_say_drill(app, session, school, teacher):
    start(app, teacher, school, mode="real")

    assert handle_inbound_sms(session, teacher.mobile, "ok") == "Confirmed: Lockdown at Port Chester Middle School."
    assert handle_inbound_sms(session, teacher.mobile, "ok") == \
        "Already confirmed: Lockdown at Port Chester Middle School."


def test_reply_to_an_ended_run_says_it_has_ended(app, session, school, principal, teacher):
    run = start(app, principal, school)
    all_clear(session, as_principal(principal), run.id)

    assert handle_inbound_sms(session, teacher.mobile, "OK") == "That alert has ended."
    assert session.scalar(select(func.count()).select_from(Acknowledgement)) == 0


def test_ack_goes_to_the_latest_active_run_that_alerted_the_number(app, session, make_school, make_person, school,
                                                                   principal):
    other = make_school(name="Other School")
    district = make_person("district_admin", [], name="Dana District")
    first = start(app, principal, school)
    second = start(app, district, other)

    assert handle_inbound_sms(session, district.mobile, "ok") == "Confirmed: Lockdown DRILL at Other School."
    assert session.scalar(select(Acknowledgement.run_id)) == second.id != first.id


def test_unknown_reply_gets_the_help_text(app, session, school, principal, teacher):
    start(app, principal, school)

    assert handle_inbound_sms(session, teacher.mobile, "what is going on?") == HELP_TEXT


def test_unknown_number_gets_no_reply_but_is_recorded(app, session, school, principal):
    start(app, principal, school)

    assert handle_inbound_sms(session, STRANGER, "OK", "SM2") is None
    [message] = inbound(session)
    assert message.from_number == STRANGER and message.kind == "ack" and message.replied is False
    assert session.scalar(select(func.count()).select_from(Acknowledgement)) == 0


def test_known_number_with_nothing_to_confirm_is_told_so(app, session, teacher):
    assert handle_inbound_sms(session, teacher.mobile, "ok") == "There is no alert to confirm right now."


def test_every_message_is_recorded_with_its_body_cut_to_500(app, session, school, principal, teacher):
    run = start(app, principal, school)

    handle_inbound_sms(session, teacher.mobile, "x" * 2000, "SM3")
    handle_inbound_sms(session, teacher.mobile, "OK", "SM4")

    long, ack = inbound(session)
    assert len(long.body) == 500 and long.kind == "unknown" and long.replied is True
    assert ack.kind == "ack" and ack.run_id == run.id and ack.provider_sid == "SM4"


def test_duplicate_message_sid_acts_once(app, session, school, principal, teacher):
    start(app, principal, school)

    assert handle_inbound_sms(session, teacher.mobile, "STOP", "SMdup") is None
    handle_inbound_sms(session, teacher.mobile, "START", "SMstart")
    assert handle_inbound_sms(session, teacher.mobile, "STOP", "SMdup") is None

    assert session.scalar(select(func.count()).select_from(OptOut)) == 0  # the repeat did not opt out again
    assert len(inbound(session)) == 2


def test_replies_are_rate_limited_per_number_but_acks_still_count(app, session, school, principal, teacher):
    run = start(app, principal, school)
    for _ in range(REPLY_LIMIT):
        assert handle_inbound_sms(session, teacher.mobile, "hello?") == HELP_TEXT

    assert handle_inbound_sms(session, teacher.mobile, "hello?") is None
    assert handle_inbound_sms(session, teacher.mobile, "OK") is None

    assert session.scalar(select(Acknowledgement.run_id)) == run.id
    assert [m.replied for m in inbound(session)] == [True] * REPLY_LIMIT + [False, False]


def test_stop_opts_out_and_start_opts_back_in(app, session, teacher):
    assert handle_inbound_sms(session, teacher.mobile, "Stop") is None
    opt_out = session.scalar(select(OptOut))
    assert opt_out.number == teacher.mobile and opt_out.keyword == "STOP"

    assert handle_inbound_sms(session, teacher.mobile, "unstop") is None
    assert session.scalar(select(OptOut)) is None


def test_stop_inside_a_sentence_is_not_an_opt_out(app, session, teacher):
    assert handle_inbound_sms(session, teacher.mobile, "please stop texting me") == HELP_TEXT
    assert session.scalar(select(OptOut)) is None


def test_checkin_and_help_go_to_the_accountability_handler(app, session, school, principal, teacher, monkeypatch):
    import emergency.sms.inbound as inbound

    seen = []

    def handle(session_, sender, reply, run):
        seen.append((sender.id, reply.kind, run.id if run else None))
        return f"handled {reply.kind}"

    monkeypatch.setattr(inbound, "handle", handle)
    run = start(app, principal, school)

    assert handle_inbound_sms(session, teacher.mobile, "IN 204 P22") == "handled checkin"
    assert handle_inbound_sms(session, teacher.mobile, "SOS") == "handled help_me"
    assert seen == [(teacher.id, "checkin", run.id), (teacher.id, "help_me", run.id)]


def test_cli_receive_runs_the_same_handling_and_prints_the_reply(app, session, school, principal, teacher,
                                                                 database_url, tmp_path):
    start(app, principal, school)
    session.commit()  # the command opens its own connection
    env = {"ENV": "test", "DATABASE_URL": database_url, "DISPATCHER": "off", "INSTANCE_PATH": str(tmp_path),
           "PLAYBOOKS_DIR": app.config["PLAYBOOKS_DIR"], "SECRET_KEY": "test-secret-key-0123456789"}
    national = teacher.mobile[2:]  # as typed on a US keyboard, without +1

    result = CliRunner(env=env).invoke(sms, ["receive", "--from", national, "ok"])

    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("Confirmed: Lockdown DRILL at Port Chester Middle School.")
    assert session.scalar(select(Acknowledgement.channel)) == "sms"


def test_cli_receive_refuses_a_bad_number(app, database_url, tmp_path):
    env = {"ENV": "test", "DATABASE_URL": database_url, "DISPATCHER": "off", "INSTANCE_PATH": str(tmp_path),
           "SECRET_KEY": "test-secret-key-0123456789"}

    result = CliRunner(env=env).invoke(sms, ["receive", "--from", "not a number", "ok"])

    assert result.exit_code == 2 and "--from" in result.output
