import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emergency.sms.grammar import (
    HELP_TEXT,
    CheckinReport,
    CheckinSyntaxError,
    describe,
    looks_like_checkin,
    parse_checkin,
)

R = CheckinReport

GOOD = [
    # positional: room, present, missing, injured
    ("204 22 0 1", R("204", 22, 0, 1)),
    ("204 22 3", R("204", 22, 3)),
    ("204 22", R("204", 22)),
    ("  204   22  0  1  ", R("204", 22, 0, 1)),
    ("204, 22, 0, 1", R("204", 22, 0, 1)),
    ("204;22;0;1", R("204", 22, 0, 1)),
    ("204 22 0 1.", R("204", 22, 0, 1)),
    ("B12 18 1 0", R("B12", 18, 1, 0)),
    ("b12 18", R("B12", 18)),
    ("1-204 5", R("1-204", 5)),
    ("A.3 7", R("A.3", 7)),
    ("204 0", R("204", 0)),
    ("204 9999 9999 9999", R("204", 9999, 9999, 9999)),
    ("204 022", R("204", 22)),
    ("IN 204 22 0 1", R("204", 22, 0, 1)),
    # keyword form
    ("IN 204 P22 M0 I1", R("204", 22, 0, 1)),
    ("in 204 p22 m0 i1", R("204", 22, 0, 1)),
    ("In 204 I1 M0 P22", R("204", 22, 0, 1)),
    ("IN 204 P 22 M 0 I 1", R("204", 22, 0, 1)),
    ("IN 204 P:22 M:0 I:1", R("204", 22, 0, 1)),
    ("IN 204 p=22 m=0 i=1", R("204", 22, 0, 1)),
    ("IN 204 P: 22, M = 1; I 0", R("204", 22, 1, 0)),
    ("IN 204 P22,M1,I0", R("204", 22, 1, 0)),
    ("IN 204 P22M1I0", R("204", 22, 1, 0)),
    ("IN 204 P22 E3", R("204", 22, extra=3)),
    ("IN 204 P22 X3", R("204", 22, extra=3)),
    ("IN 204 P22 A2", R("204", 22, absent=2)),
    ("IN 204 P22 M1 I2 E3 A4", R("204", 22, 1, 2, 3, 4)),
    ("204 P22 M1", R("204", 22, 1)),
    ("IN 204: P22", R("204", 22)),
    ("IN: 204 P22", R("204", 22)),
    ("IN 204 P22!", R("204", 22)),
    ("IN GYM P30", R("GYM", 30)),
    ("in gym p30", R("GYM", 30)),
    ("IN CAFETERIA 40 2", R("CAFETERIA", 40, 2)),
    ("204 22 M1", R("204", 22, 1)),
    ("IN\t204\nP22", R("204", 22)),
    ("IN\u00a0204\u00a0P22", R("204", 22)),
    ("\uff29\uff2e \uff12\uff10\uff14 \uff30\uff12\uff12", R("204", 22)),  # full-width
]


@pytest.mark.parametrize(("body", "expected"), GOOD)
def test_parse_checkin_accepts_good_samples(body: str, expected: CheckinReport) -> None:
    assert parse_checkin(body) == expected
    assert looks_like_checkin(body)


BAD = [
    ("", "missing room"),
    ("   ", "missing room"),
    ("IN", "missing room"),
    ("in  ", "missing room"),
    ("IN 204", "missing present"),
    ("204", "missing present"),
    ("IN 204 M1 I0", "missing present"),
    ("IN 204 P22 P23", "P is given twice"),
    ("IN 204 E1 X2 P3", "given twice"),
    ("204 22 P23", "given twice"),
    ("IN 204 P22 Q1", "unknown tag"),
    ("IN 204 present 22", "unknown tag"),
    ("204 22 0 1 5", "too many numbers"),
    ("IN 204 22 0 1 5", "too many numbers"),
    ("204 -3", "negative"),
    ("IN 204 P-3", "negative"),
    ("IN 204 P:-3", "negative"),
    ("IN 204 P22 M -1", "negative"),
    ("IN 204 P10000", "too large"),
    ("204 22 0 99999999999999999999", "too large"),
    ("IN 204 P" + "9" * 5000, "too long"),
    ("IN 204 P00010000", "too large"),
    ("204 22abc", "whole numbers"),
    ("IN 204 P2O", "whole numbers"),
    ("IN 204 P2.5", "whole numbers"),
    ("204 22 #", "whole numbers"),
    ("IN 204 P", "P needs a number"),
    ("IN 204 P M1", "P needs a number"),
    ("IN 204 Pabc", "unknown tag"),
    ("IN 204 P22 5", "no tag"),
    ("GYM 22", "start with IN"),
    ("IN 204# P22", "room must be"),
    ("IN -204 P22", "room must be"),
    ("IN " + "A" * 21 + " P22", "room is too long"),
]


@pytest.mark.parametrize(("body", "reason"), BAD)
def test_parse_checkin_rejects_bad_samples_with_a_reason(body: str, reason: str) -> None:
    with pytest.raises(CheckinSyntaxError, match=reason):
        parse_checkin(body)


@pytest.mark.parametrize(
    "body",
    [
        "IN 204 P22 Jimmy",
        "IN 204 P22 M1 Maria Lopez",
        "IN 204 P22 M1 missing:Jimmy",
        "IN 204 P22 M1 Zoe2",
        "204 22 Jimmy",
        "204 22 1 Jimmy",
    ],
)
def test_errors_never_echo_words_from_the_message(body: str) -> None:
    with pytest.raises(CheckinSyntaxError) as info:
        parse_checkin(body)
    message = str(info.value).lower()
    for word in re.findall(r"[A-Za-z]{2,}", body):
        if word.upper() != "IN":
            assert word.lower() not in message


@pytest.mark.parametrize(
    "body",
    [
        "1",
        "2",
        "204",
        "OK",
        "ok 2",
        "2 kids hurt in room 5",
        "3 missing",
        "Gym 22",
        "Help 3 kids hurt",
        "P22",
        "thanks",
        "",
    ],
)
def test_looks_like_checkin_leaves_other_messages_alone(body: str) -> None:
    assert not looks_like_checkin(body)


@pytest.mark.parametrize("body", ["IN", "in the gym with kids", "204 22abc", "204 P-3", "204 -3", "IN 204"])
def test_looks_like_checkin_catches_malformed_attempts(body: str) -> None:
    assert looks_like_checkin(body)


@pytest.mark.parametrize(
    ("report", "text"),
    [
        (R("204", 22, 0, 1), "Room 204: 22 present, 0 missing, 1 injured"),
        (R("204", 22), "Room 204: 22 present, 0 missing, 0 injured"),
        (R("GYM", 30, 1, 0, 2), "Room GYM: 30 present, 1 missing, 0 injured, 2 extra"),
        (R("B12", 18, 0, 0, 0, 3), "Room B12: 18 present, 0 missing, 0 injured, 3 absent"),
        (R("1-204", 1, 2, 3, 4, 5), "Room 1-204: 1 present, 2 missing, 3 injured, 4 extra, 5 absent"),
    ],
)
def test_describe_says_exactly_what_was_recorded(report: CheckinReport, text: str) -> None:
    assert describe(report) == text


def test_describe_of_a_parsed_message_round_trips() -> None:
    assert (
        describe(parse_checkin("in b12 p:18, x=2")) == "Room B12: 18 present, 0 missing, 0 injured, 2 extra"
    )


def test_describe_fits_one_sms_even_at_the_limits() -> None:
    report = R("A" * 20, 9999, 9999, 9999, 9999, 9999)
    assert len(describe(report)) <= 160


def test_help_text_fits_one_plain_sms_and_shows_both_forms() -> None:
    assert len(HELP_TEXT) < 160
    assert HELP_TEXT.isascii()
    assert "IN 204 P22 M0 I1" in HELP_TEXT
    assert "204 22 0 1" in HELP_TEXT
    assert parse_checkin("IN 204 P22 M0 I1") == parse_checkin("204 22 0 1")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
def test_parse_checkin_raises_only_syntax_errors(body: str) -> None:
    try:
        report = parse_checkin(body)
    except CheckinSyntaxError as exc:
        assert str(exc)
        assert len(str(exc)) < 100
    else:
        assert 0 <= report.present <= 9999
        assert looks_like_checkin(body)


_TOKENS = st.sampled_from(
    [
        "IN",
        "in",
        "204",
        "B12",
        "GYM",
        "1-204",
        "P",
        "M",
        "I",
        "E",
        "X",
        "A",
        "Q",
        ":",
        "=",
        ",",
        ";",
        "-",
        ".",
        "22",
        "0",
        "99999",
        "P22",
        "m1",
        "i=0",
        " ",
        "  ",
        "\t",
        "ok",
        "\u00a0",
        "\U0001f600",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, max_size=12).map("".join))
def test_parse_checkin_raises_only_syntax_errors_on_near_miss_input(body: str) -> None:
    try:
        report = parse_checkin(body)
    except CheckinSyntaxError:
        return
    assert report.room
    assert all(0 <= n <= 9999 for n in (report.present, report.missing, report.injured))


@settings(max_examples=200, deadline=None)
@given(
    room=st.from_regex(r"[A-Z0-9]{1,6}", fullmatch=True).filter(lambda r: any(c.isdigit() for c in r)),
    counts=st.tuples(*[st.integers(0, 9999)] * 5),
    sep=st.sampled_from([" ", ":", "=", ""]),
    order=st.permutations(["P", "M", "I", "E", "A"]),
)
def test_keyword_form_round_trips_any_order(
    room: str, counts: tuple[int, ...], sep: str, order: list[str]
) -> None:
    values = dict(zip("PMIEA", counts, strict=True))
    body = "IN " + room + " " + " ".join(f"{tag}{sep}{values[tag]}" for tag in order)
    assert parse_checkin(body) == R(room, *counts)
