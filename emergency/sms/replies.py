"""Classify an inbound SMS reply from staff: acknowledgement, opt-out/in, a call for help, a check-in."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from emergency.sms.grammar import (
    MAX_BODY_CHARS,
    CheckinReport,
    CheckinSyntaxError,
    looks_like_checkin,
    parse_checkin,
)

ReplyKind = Literal["ack", "opt_out", "opt_in", "help_me", "checkin", "unknown"]

# Twilio's own keywords: it blocks or restores the number itself, the product only records it.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
ACK_WORDS = frozenset({"1", "OK", "ACK", "SAFE", "Y"})
# Twilio also answers HELP with its own help message; the product records it as a staff member in need.
HELP_ME_WORDS = frozenset({"HELP", "NEED HELP", "SOS"})

# Everything that is not a letter or digit, at either end: spaces, punctuation, emoji.
_EDGES_RE = re.compile(r"^[\W_]+|[\W_]+$")


@dataclass(frozen=True)
class Reply:
    """What an inbound SMS means; checkin is set for a good check-in, error for a malformed one."""

    kind: ReplyKind
    checkin: CheckinReport | None = None
    error: str | None = None


def _keyword(body: str) -> str:
    """Reduce a whole message to an upper-case keyword candidate, without surrounding noise."""
    text = body.strip()
    if len(text) > MAX_BODY_CHARS:
        return ""
    text = unicodedata.normalize("NFKC", text)
    return " ".join(_EDGES_RE.sub("", text).split()).upper()


def classify_reply(body: str) -> Reply:
    """Classify an inbound SMS body; never raises."""
    word = _keyword(body)
    if word in OPT_OUT_WORDS:
        return Reply("opt_out")
    if word in OPT_IN_WORDS:
        return Reply("opt_in")
    if word in ACK_WORDS:
        return Reply("ack")
    if word in HELP_ME_WORDS:
        return Reply("help_me")
    if looks_like_checkin(body):
        try:
            return Reply("checkin", checkin=parse_checkin(body))
        except CheckinSyntaxError as exc:
            return Reply("checkin", error=str(exc))
    return Reply("unknown")
