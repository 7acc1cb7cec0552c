"""The SMS check-in grammar: how a teacher without data texts their room's report.

Two forms, which may be mixed as long as plain numbers come first:

    204 22 0 1            room, present, missing, injured (missing and injured optional)
    IN 204 P22 M0 I1      IN optional, then tagged counts in any order

Error messages never echo words from the message: a teacher may type a student's name, and the
error goes back out as an SMS.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

MAX_BODY_CHARS = 500
MAX_COUNT = 9999
MAX_ROOM_CHARS = 20

HELP_TEXT = (
    "Check in: IN <room> P<present> M<missing> I<injured>, e.g. IN 204 P22 M0 I1 (or 204 22 0 1). "
    "Reply OK to confirm an alert."
)

# Tags are ASCII on purpose: a phone keyboard's letters and digits are ASCII after NFKC.
_TAGS = {"P": "present", "M": "missing", "I": "injured", "E": "extra", "X": "extra", "A": "absent"}
_POSITIONAL_FIELDS = ("present", "missing", "injured")
_KEYWORD_RE = re.compile(r"in\b", re.IGNORECASE)
_ROOM_RE = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_TOKEN_RE = re.compile(r"[A-Za-z]+|[0-9]+|\S")
_NUMBER_RE = re.compile(r"[0-9]+")
_WORD_RE = re.compile(r"[A-Za-z]+")
# After a digit-bearing room, a check-in goes on with a count ("22", "-3") or a tag ("P22", "p: 22").
# Free text such as "2 kids hurt in room 5" does not, and stays a message for a person to read.
_COUNTS_START_RE = re.compile(r"\s*(?:[PMIEXA]\s*[:=]?\s*)?-?[0-9]", re.IGNORECASE)


@dataclass(frozen=True)
class CheckinReport:
    """One room's head count as the teacher texted it."""

    room: str
    present: int
    missing: int = 0
    injured: int = 0
    extra: int = 0
    absent: int = 0


class CheckinSyntaxError(ValueError):
    """A message that should be a check-in but is not well formed; str() is a short human reason."""


def _prepare(body: str) -> str:
    """Normalise width and spacing, turn list separators into spaces, drop a closing '.' or '!'."""
    text = unicodedata.normalize("NFKC", body)
    text = text.replace(",", " ").replace(";", " ")
    return text.strip().rstrip(".!").strip()


def _split_keyword(text: str) -> tuple[bool, str]:
    """Return whether the message starts with the IN keyword, and the text after it."""
    match = _KEYWORD_RE.match(text)
    if match is None:
        return False, text
    return True, text[match.end() :].lstrip().removeprefix(":").lstrip()


def looks_like_checkin(body: str) -> bool:
    """Tell whether a message is meant as a check-in, well formed or not."""
    text = _prepare(body[: MAX_BODY_CHARS * 2])
    keyword, rest = _split_keyword(text)
    if keyword:
        return True
    room = _ROOM_RE.match(rest)
    if room is None or not any(ch.isdigit() for ch in room.group()):
        return False
    after = rest[room.end() :]
    if after[:1] not in ("", ":", "=") and not after[:1].isspace():
        return False
    return _COUNTS_START_RE.match(after.lstrip(":=")) is not None


def _count(digits: str, label: str) -> int:
    """Turn a run of ASCII digits into a count, refusing values above MAX_COUNT."""
    # Checked before int(): Python refuses to convert strings of more than 4300 digits.
    if len(digits.lstrip("0")) > len(str(MAX_COUNT)) or int(digits) > MAX_COUNT:
        raise CheckinSyntaxError(f"{label} is too large (max {MAX_COUNT})")
    return int(digits)


def _parse_room(rest: str, keyword: bool) -> tuple[str, str]:
    """Read the room token at the start of rest; return it and the text after it."""
    if not rest:
        raise CheckinSyntaxError("missing room number")
    match = _ROOM_RE.match(rest)
    after = rest[match.end() :] if match else rest
    if match is None or (after and not after[0].isspace() and after[0] not in ":="):
        raise CheckinSyntaxError("room must be letters and digits, like 204, B12 or 1-204")
    room = match.group().upper()
    if len(room) > MAX_ROOM_CHARS:
        raise CheckinSyntaxError(f"room is too long (max {MAX_ROOM_CHARS} characters)")
    if not keyword and not any(ch.isdigit() for ch in room):
        # A bare word first ("Gym 22", "Help 3") is more likely free text than a check-in.
        raise CheckinSyntaxError("start with IN for a named room, e.g. IN GYM P22")
    return room, after.lstrip().removeprefix(":").removeprefix("=")


def _parse_counts(rest: str) -> dict[str, int]:
    """Read positional numbers, then tagged counts, from the text after the room."""
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(rest)]
    counts: dict[str, int] = {}
    positional = 0
    tagged = False
    i = 0

    def store(field: str, label: str, digits: str) -> None:
        if field in counts:
            raise CheckinSyntaxError(f"{label} is given twice")
        counts[field] = _count(digits, label)

    def check_whole(index: int) -> None:
        # A number glued to something other than a tag: "22abc", "2.5", "1O".
        if index + 1 < len(tokens) and tokens[index + 1][1] == tokens[index][2]:
            glued = tokens[index + 1][0]
            if not (_WORD_RE.fullmatch(glued) and glued.upper() in _TAGS):
                raise CheckinSyntaxError(f"counts must be whole numbers 0-{MAX_COUNT}")

    while i < len(tokens):
        text = tokens[i][0]
        if text == "-":
            raise CheckinSyntaxError("counts cannot be negative")
        if _NUMBER_RE.fullmatch(text):
            if tagged:
                raise CheckinSyntaxError("a number has no tag: put plain numbers before P/M/I")
            if positional >= len(_POSITIONAL_FIELDS):
                raise CheckinSyntaxError("too many numbers: send room, present, missing, injured")
            check_whole(i)
            field = _POSITIONAL_FIELDS[positional]
            store(field, field, text)
            positional += 1
            i += 1
            continue
        if _WORD_RE.fullmatch(text):
            tag = text.upper()
            if tag not in _TAGS:
                raise CheckinSyntaxError("unknown tag: use P, M, I, E or A")
            i += 1
            if i < len(tokens) and tokens[i][0] in (":", "="):
                i += 1
            if i < len(tokens) and tokens[i][0] == "-":
                raise CheckinSyntaxError("counts cannot be negative")
            if i >= len(tokens) or not _NUMBER_RE.fullmatch(tokens[i][0]):
                raise CheckinSyntaxError(f"{tag} needs a number, e.g. {tag}3")
            check_whole(i)
            store(_TAGS[tag], tag, tokens[i][0])
            tagged = True
            i += 1
            continue
        raise CheckinSyntaxError(f"counts must be whole numbers 0-{MAX_COUNT}")

    if "present" not in counts:
        raise CheckinSyntaxError("missing present count, e.g. P22")
    return counts


def parse_checkin(body: str) -> CheckinReport:
    """Parse a check-in SMS body; raise CheckinSyntaxError with a short reason if malformed."""
    if len(body.strip()) > MAX_BODY_CHARS:
        # Refused rather than truncated: a cut "P22" would silently become "P2".
        raise CheckinSyntaxError("message is too long for a check-in")
    keyword, rest = _split_keyword(_prepare(body))
    room, rest = _parse_room(rest, keyword)
    return CheckinReport(room=room, **_parse_counts(rest))


def describe(report: CheckinReport) -> str:
    """Say exactly what was recorded, short enough for one SMS reply."""
    parts = [f"{report.present} present", f"{report.missing} missing", f"{report.injured} injured"]
    if report.extra:
        parts.append(f"{report.extra} extra")
    if report.absent:
        parts.append(f"{report.absent} absent")
    return f"Room {report.room}: " + ", ".join(parts)
