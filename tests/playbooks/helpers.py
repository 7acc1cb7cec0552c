"""A small valid playbook whose line numbers the error tests rely on, and helpers to check it."""

from __future__ import annotations

from pathlib import Path

from emergency.playbooks.loader import load_playbook_file

REPO = Path(__file__).resolve().parents[2]
STANDARD_DIR = REPO / "playbooks"

# Line numbers matter: tests assert exact positions in this text. Do not reflow it.
BASE = """\
key: test_lockdown
name: Test lockdown
action: lockdown
directive: Locks, lights, out of sight.
description: A playbook for tests.
modes: [drill, real]
start_roles:
  drill: [school_admin]
  real: [teacher, staff]
notifications:
  - audience: [partners]
    modes: [real]
    channels: [sms, voice]
    templates:
      start: "LOCKDOWN at {school}. {reply_hint}"
    require_ack: true
    escalate_after_seconds: 120
    priority: 0
  - audience: [all_staff]
    channels: [push, sms]
    templates:
      start: "LOCKDOWN at {school} ({time}). {directive} {reply_hint}"
      update: "Update: {message}"
    require_ack: true
    escalate_after_seconds: 120
    priority: 50
accountability:
  required: true
  reminder_minutes: 5
  deadline_minutes: 10
  locations:
    rooms: true
checklist:
  - {step: Lock the door., role: teacher}
compliance_category: lockdown
"""


def variant(*replacements: tuple[str, str]) -> str:
    """BASE with each (old, new) replaced exactly once."""
    text = BASE
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} must occur exactly once in BASE"
        text = text.replace(old, new)
    return text


def problems_in(tmp_path: Path, text: str, name: str = "test.yaml") -> tuple[str, list[str]]:
    """Write `text` to a file and return (file name, every problem as text)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    playbook, problems = load_playbook_file(path)
    if problems:
        assert playbook is None
    return str(path), [str(problem) for problem in problems]


def assert_problem(problems: list[str], file: str, line: int, column: int, field: str, fragment: str) -> None:
    """Exactly one problem at file:line:column with `field`, whose message contains `fragment`."""
    prefix = f"{file}:{line}:{column}: {field}: " if field else f"{file}:{line}:{column}: "
    matching = [problem for problem in problems if problem.startswith(prefix) and fragment in problem]
    assert len(matching) == 1, f"expected one {prefix}...{fragment!r} in:\n" + "\n".join(problems)
