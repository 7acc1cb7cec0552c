"""Drill facts: what a drill record carries beyond its times (secondary exit used, parents notified on).

A playbook names the facts its drills record (`drill_facts`); a principal gives them when starting
or after the drill (stored in the run's `facts`); the compliance report reads them under the same
names. Validating them needs only the playbook, so starting a run and recording facts share it.
"""

from __future__ import annotations

from datetime import date, datetime, time

from emergency.errors import ValidationFailed
from emergency.playbooks.model import Playbook

# Facts a drill record may be asked to carry (stored in the run's `facts`, read by the
# compliance report under the same names). A closed list so that a typo in a playbook is
# caught by `emergency playbooks check`, not by an inspector finding an empty column.
DRILL_FACTS = (
    "secondary_exit",  # bool: the evacuation used fire escapes or a secondary means of egress
    "parents_notified_on",  # date: when parents were told of an early-dismissal test
    "dismissal_time",  # time: the school's normal dismissal time that day (early dismissal)
    "summer",  # bool: the drill was held during summer school
)

BOOLEAN_FACTS = ("secondary_exit", "summer")
ALWAYS_ALLOWED_FACTS = ("summer",)  # any drill may be held during summer school


def validate_facts(playbook: Playbook, facts: dict | None, *, field_prefix: str = "facts.") -> dict:
    """Check drill facts against what the playbook records; the cleaned facts (None clears one)."""
    clean: dict = {}
    errors: dict[str, list[str]] = {}
    allowed = set(ALWAYS_ALLOWED_FACTS) | set(playbook.drill_facts)
    for key, value in (facts or {}).items():
        if key not in DRILL_FACTS:
            errors[key] = [f"unknown drill fact; known: {', '.join(DRILL_FACTS)}"]
        elif key not in allowed:
            errors[key] = [f"the {playbook.name} playbook does not record '{key}'; "
                           f"it records: {', '.join(sorted(allowed))}"]
        elif value is None:
            clean[key] = None
        else:
            try:
                clean[key] = _fact_value(key, value)
            except ValueError as exc:
                errors[key] = [str(exc)]
    if errors:
        raise ValidationFailed("Some drill facts are not valid: " + "; ".join(
            f"{key}: {' '.join(messages)}" for key, messages in errors.items()),
            errors={field_prefix + key: messages for key, messages in errors.items()})
    return clean


def _fact_value(name: str, value: object) -> object:
    if name in BOOLEAN_FACTS:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name == "parents_notified_on":
        if isinstance(value, datetime):
            raise ValueError("must be a date like 2026-10-01, without a time")
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("must be a date like 2026-10-01") from None
    # dismissal_time: that day's normal dismissal, when it differs from the school's usual one
    if isinstance(value, time):
        return value.strftime("%H:%M")
    clock = parse_clock(str(value))
    if clock is None:
        raise ValueError('must be a local time like "15:10"')
    return clock.strftime("%H:%M")


def parse_clock(text: str) -> time | None:
    """A local time written "15:10", or None."""
    try:
        hours, minutes = text.split(":")
        if len(hours) != 2 or len(minutes) != 2:
            return None
        return time(int(hours), int(minutes))
    except ValueError:
        return None
