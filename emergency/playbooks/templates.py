"""The words of every alert: template variables, rendering, the drill banner and SMS lengths.

Playbook YAML holds a district's own wording; this module holds what fills it in and the few
messages the system writes itself (the reply hint, the notice that a real emergency ended a drill,
the call for help, the unreachable notice). Drill messages always start with DRILL_BANNER, and a
real message can never read as a drill.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from emergency.playbooks.model import MODES, OCCASIONS, NotificationRule, Playbook

# Every variable a template may use, with the longest value the SMS length check assumes.
# `render()` cuts longer values to these lengths so the check stays true at run time;
# `action` and `directive` come from the playbook itself, whose validator enforces these caps.
TEMPLATE_VARIABLES: MappingProxyType[str, int] = MappingProxyType({
    "school": 40,  # school name: configure a short name ("Lincoln MS") for longer ones
    "action": 40,  # the playbook name, e.g. "Lockdown"
    "directive": 120,  # the playbook directive (or the chosen variant's)
    "location": 60,  # a room, an area of the building or an assembly point
    "initiator": 40,  # who started the run: "Ms. Rivera (teacher)"
    "time": 8,  # local time the run started or the update was sent: "10:42 AM"
    "reply_hint": 40,  # how to acknowledge, supplied by the alerts module: "Reply 1 if you got this."
    "message": 140,  # free text of an update, typed by an admin (the UI should stop at 140)
    "reason": 100,  # why a run was cancelled
})

# Prefixed to every drill message on every channel. Real messages can never carry it: the
# validator rejects templates containing it and `render()` strips it from real messages.
DRILL_BANNER = "DRILL - THIS IS A DRILL."

# Appended to the text of an alert that asks for an acknowledgement (the `reply_hint` variable).
REPLY_HINT = "Reply OK to confirm."
# Not a playbook template: neither "all clear" nor "sent in error" is true when a real emergency
# ends a drill. Those who got the drill are told, in the drill's own words, that this one is real.
SUPERSEDED_TEMPLATE = "This drill is over: a REAL emergency has started at {school}. Follow the real alert now."

# Used when neither the rule nor the playbook gives one. No default for `start`: the first
# message of an emergency is the one that matters and must be written on purpose.
DEFAULT_TEMPLATES = {
    "update": "{action} UPDATE at {school} ({time}): {message}",
    "all_clear": "ALL CLEAR at {school} ({time}): the {action} is over. {message}",
    "cancel": "CANCELLED at {school} ({time}): disregard the {action} alert. {reason}",
}

# Two concatenated SMS segments: 153 GSM-7 septets or 67 UCS-2 characters each.
SMS_LIMIT_GSM = 306
SMS_LIMIT_UCS2 = 134
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")  # each costs two septets (escape + character)

# Anything that would make a message read as a drill. Matched loosely (any spacing, any case)
# because the point is what a frightened reader sees, not the exact bytes.
_DRILL_PHRASE = re.compile(r"this\s+is\s+a\s+drill\W*", re.IGNORECASE)
_DRILL_BANNER_RE = re.compile(r"drill\s*-\s*this\s+is\s+a\s+drill\W*", re.IGNORECASE)
_LEADING_DRILL = re.compile(r"\A\W*drill\s*[-:.!]+\s*", re.IGNORECASE)  # "DRILL: ...", "Drill - ..."
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"[ \t]{2,}")
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SENTENCE_END = re.compile(r"((?<=[.!?])\s+|\n+)")
_LABEL_LINE = r"(?:[^{{}}.!?]*:\s*)?\{{{name}\}}[.!?]?"
_JOINED_VARIABLE = r"(?:\s*(?:,|:|\b(?:at|by|in|near|from|to|of)\b))?\s*\{{{name}\}}"
_EMPTY_BRACKETS = re.compile(r"\(\s*[,;]?\s*\)")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)])")



# --------------------------------------------------------------------------- rendering


def render(template: str, variables: dict[str, Any], mode: str) -> str:
    """Fill `template` in; drills get the banner, real messages can never look like a drill."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    real = mode == "real"
    values = {name: _clean_value(name, variables.get(name), real) for name in TEMPLATE_VARIABLES}

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return values.get(match.group(1), "")

    filled = _without_empty_fields(str(template), {name for name, value in values.items() if value})
    body = _tidy(_TOKEN.sub(replace, filled))
    if real:
        return _strip_drill_markers(body, leading=True)
    return f"{DRILL_BANNER} {body}".strip()


def _without_empty_fields(template: str, filled: set[str]) -> str:
    """The template with every empty variable left out: never "Reported location: ." in a message.

    A sentence that only labels an empty variable ("Reported location: {location}.", or the
    variable alone) is dropped; elsewhere the variable goes with the word that joins it to the
    sentence ("at {location}", ", {location}", "by {initiator}").
    """
    parts = _SENTENCE_END.split(template)
    kept = []
    # parts alternate: sentence, the space or line break after it, sentence, ...
    for sentence, after in zip(parts[::2], [*parts[1::2], ""], strict=True):
        empty = [name for name in _TOKEN.findall(sentence) if name and name not in filled]
        if any(_label_only(sentence, name) for name in empty):
            continue
        for name in empty:
            sentence = re.sub(_JOINED_VARIABLE.format(name=re.escape(name)), "", sentence)
        kept.append(sentence + after)
    return "".join(kept)


def _label_only(sentence: str, name: str) -> bool:
    """Whether the sentence is nothing but a label for the variable: "Label: {name}." or "{name}"."""
    return re.fullmatch(_LABEL_LINE.format(name=re.escape(name)), sentence.strip()) is not None


def _tidy(text: str) -> str:
    """Spaces and punctuation left behind by an empty variable."""
    text = _EMPTY_BRACKETS.sub("", text)
    text = _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def _clean_value(name: str, value: Any, real: bool) -> str:
    if value is None:
        return ""
    text = _CONTROL.sub(" ", str(value)).strip()
    if real:
        text = _strip_drill_markers(text, leading=False)
    limit = TEMPLATE_VARIABLES[name]
    if len(text) > limit:
        # Cut rather than fail: the SMS length check assumed these limits.
        text = text[: limit - 3].rstrip() + "..."
    return text


def _strip_drill_markers(text: str, leading: bool) -> str:
    # Loop because removing one phrase can join two halves into a new one.
    while True:
        cleaned = _DRILL_PHRASE.sub(" ", _DRILL_BANNER_RE.sub(" ", text))
        if leading:
            cleaned = _LEADING_DRILL.sub("", cleaned.lstrip())
        cleaned = _SPACES.sub(" ", cleaned).strip()
        if cleaned == text:
            return cleaned
        text = cleaned


# --------------------------------------------------------------------------- template checks


def template_variables(template: str) -> tuple[list[str], str | None]:
    """The variable names a template uses, and a syntax error message if it has one."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return names, f"bad brace syntax ({exc}); write {{{{ and }}}} for literal braces"
    for _literal, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if format_spec or conversion:
            return names, f"formatting such as {{{field_name}!r}} or {{{field_name}:10}} is not supported"
        names.append(field_name)
    return names, None


def sms_length(template: str, rule_modes: Iterable[str], fixed: dict[str, int]) -> tuple[int, int]:
    """Worst-case rendered SMS length of `template` and the two-segment limit that applies."""
    parsed = list(string.Formatter().parse(template))
    literal = "".join(part for part, *_ in parsed)
    if "drill" in rule_modes:
        literal = DRILL_BANNER + " " + literal
    if all(char in GSM_BASIC or char in GSM_EXTENDED for char in literal):
        length = sum(2 if char in GSM_EXTENDED else 1 for char in literal)
        limit = SMS_LIMIT_GSM
    else:
        # Any character outside GSM-7 switches the whole message to UCS-2 (UTF-16 units).
        length = len(literal.encode("utf-16-le")) // 2
        limit = SMS_LIMIT_UCS2
    for _literal, name, *_ in parsed:
        if name:
            length += fixed.get(name, TEMPLATE_VARIABLES.get(name, 0))
    return length, limit


def has_drill_wording(text: str) -> bool:
    """Whether a template says "this is a drill" or starts with "DRILL:": only the banner may."""
    return bool(_DRILL_PHRASE.search(text) or _LEADING_DRILL.match(text))


def render_rule(rule: NotificationRule, occasion: str, mode: str, variables: dict[str, Any]) -> str:
    """The rule's message for `occasion` ("start", "update", ...) in `mode`, banner included for drills."""
    if occasion not in rule.templates:
        raise ValueError(f"unknown occasion {occasion!r}; expected one of {', '.join(OCCASIONS)}")
    return render(rule.templates[occasion], variables, mode)


def banner(mode: str) -> str:
    """What starts every text the system writes itself during a drill ("" in a real run)."""
    return f"{DRILL_BANNER} " if mode == "drill" else ""


# --------------------------------------------------------------------------- a run's variables


def local_time(timezone: str, at: datetime) -> str:
    """HH:MM in a school's own time zone, for messages."""
    try:
        zone = ZoneInfo(timezone)
    except Exception:  # an unknown zone must not stop an alert
        zone = ZoneInfo("UTC")
    return at.astimezone(zone).strftime("%H:%M")


def message_variables(run, **extra) -> dict:
    """Template variables for a run's messages (`run`: a runs.models.Run), `extra` on top."""
    variables = {
        "school": run.school.name,
        "action": Playbook.from_dict(run.playbook).name,
        "directive": run.directive,
        "location": run.location or "",
        "initiator": run.started_by.get("name", ""),
        "time": local_time(run.school.timezone, run.started_at),
    }
    variables.update(extra)
    return variables


# --------------------------------------------------------------------------- the system's own texts


def help_text(mode: str, name: str, where: str | None, school: str) -> str:
    """The urgent SMS to admins (and partners in a real run): someone needs help. Never a student's name."""
    return f"{banner(mode)}URGENT: {name[:60]} needs help ({(where or 'location not given')[:60]}). {school[:60]}."


def unreachable_text(mode: str, tried: list[str], name: str, role: str, school: str) -> str:
    """The SMS to a school's admins when someone stayed silent after every channel. Staff names only."""
    words = [w for c, w in (("sms", "SMS"), ("voice", "call")) if c in tried] or ["the app alert"]
    return f"{banner(mode)}Not confirmed after {' and '.join(words)}: {name} ({role.replace('_', ' ')}). {school}."
