import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emergency.sms.grammar import CheckinReport
from emergency.sms.replies import Reply, classify_reply


@pytest.mark.parametrize(
    "body",
    [
        "1",
        "OK",
        "ok",
        "Ok.",
        " ok! ",
        "OK!!",
        "ACK",
        "Ack.",
        "ack",
        "SAFE",
        "safe",
        "Safe!",
        "Y",
        "y",
        " y ",
        "(ok)",
        "OK 👍",
        "\uff2f\uff2b",
        "1.",
        "\n1\n",
    ],
)
def test_acknowledgements_are_acks(body: str) -> None:
    assert classify_reply(body) == Reply("ack")


@pytest.mark.parametrize(
    "body",
    ["STOP", "stop", "Stop.", " STOP! ", "STOPALL", "Unsubscribe", "CANCEL", "end", "QUIT", "quit!"],
)
def test_opt_out_keywords_are_opt_outs(body: str) -> None:
    assert classify_reply(body) == Reply("opt_out")


@pytest.mark.parametrize("body", ["START", "start", "Start!", "UNSTOP", "unstop."])
def test_opt_in_keywords_are_opt_ins(body: str) -> None:
    assert classify_reply(body) == Reply("opt_in")


@pytest.mark.parametrize(
    "body", ["HELP", "help", "Help!", "NEED HELP", "need  help!!", "SOS", "sos!", "🆘 SOS"]
)
def test_help_keywords_are_help_me(body: str) -> None:
    assert classify_reply(body) == Reply("help_me")


@pytest.mark.parametrize(
    "body",
    [
        "2",
        "0",
        "11",
        "please stop texting me",
        "stop it please",
        "STOP STOP",
        "start over",
        "okay",
        "yes",
        "no",
        "O.K.",
        "help 3 kids hurt",
        "we need help in 204",
        "2 kids hurt in room 5",
        "Gym 22",
        "204",
        "",
        "   ",
        "!!!",
        "👍",
        "P22",
    ],
)
def test_other_messages_are_unknown(body: str) -> None:
    assert classify_reply(body) == Reply("unknown")


@pytest.mark.parametrize(
    ("body", "report"),
    [
        ("204 22 0 1", CheckinReport("204", 22, 0, 1)),
        ("204 22", CheckinReport("204", 22)),
        ("IN 204 P22 M0 I1", CheckinReport("204", 22, 0, 1)),
        ("in gym p:30, x=2", CheckinReport("GYM", 30, extra=2)),
        ("B12 18 1", CheckinReport("B12", 18, 1)),
    ],
)
def test_checkins_carry_the_parsed_report(body: str, report: CheckinReport) -> None:
    assert classify_reply(body) == Reply("checkin", checkin=report)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("IN", "missing room"),
        ("IN 204", "missing present"),
        ("IN 204 P22 P23", "twice"),
        ("IN 204 P22 Q1", "unknown tag"),
        ("204 22 0 1 5", "too many"),
        ("204 -3", "negative"),
        ("IN 204 P10000", "too large"),
        ("204 22abc", "whole numbers"),
    ],
)
def test_malformed_checkins_carry_a_reason(body: str, reason: str) -> None:
    reply = classify_reply(body)
    assert reply.kind == "checkin"
    assert reply.checkin is None
    assert reply.error is not None and reason in reply.error


def test_one_is_an_ack_not_a_checkin() -> None:
    assert classify_reply("1").kind == "ack"
    assert classify_reply("1 22").kind == "checkin"


def test_very_long_message_is_not_a_keyword() -> None:
    assert classify_reply("OK" + " " * 10_000 + "x").kind == "unknown"
    assert classify_reply("STOP" + "!" * 10_000).kind == "unknown"


def test_long_padding_around_a_keyword_is_still_the_keyword() -> None:
    assert classify_reply(" " * 10_000 + "STOP" + " " * 10_000).kind == "opt_out"


def test_very_long_checkin_is_refused_not_truncated() -> None:
    reply = classify_reply("IN 204 P22" + " " * 600 + "M1")
    assert reply.kind == "checkin" and reply.checkin is None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=700))
def test_classify_reply_never_raises(body: str) -> None:
    reply = classify_reply(body)
    assert reply.kind in {"ack", "opt_out", "opt_in", "help_me", "checkin", "unknown"}
    if reply.kind == "checkin":
        assert (reply.checkin is None) != (reply.error is None)
    else:
        assert reply.checkin is None and reply.error is None


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000))
def test_classify_reply_never_raises_on_long_unicode(body: str) -> None:
    classify_reply(body)


_PIECES = st.sampled_from(
    [
        "IN",
        "in",
        "204",
        "GYM",
        "P",
        "M",
        "I",
        "X",
        "22",
        "0",
        "-",
        ":",
        "=",
        ",",
        ".",
        "!",
        " ",
        "\t",
        "OK",
        "y",
        "1",
        "STOP",
        "start",
        "HELP",
        "SOS",
        "need",
        "\u00a0",
        "\U0001f198",
        "\uff12",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=10).map("".join))
def test_classify_reply_never_raises_on_near_miss_input(body: str) -> None:
    reply = classify_reply(body)
    assert reply.kind in {"ack", "opt_out", "opt_in", "help_me", "checkin", "unknown"}
