"""The registry keeps the last good version of a playbook across bad edits."""

from __future__ import annotations

import logging
import shutil
import threading

import pytest

from emergency.playbooks.model import Playbook
from emergency.playbooks.registry import PlaybookRegistry
from tests.playbooks.helpers import STANDARD_DIR


@pytest.fixture
def directory(tmp_path):
    target = tmp_path / "playbooks"
    shutil.copytree(STANDARD_DIR, target)
    return target


def test_initial_load(directory):
    registry = PlaybookRegistry(directory)
    assert registry.load() == []
    assert registry.problems == []
    assert registry.get("lockdown").name == "Lockdown"
    assert registry.get("nope") is None
    assert [p.key for p in registry.all()][:5] == ["hold", "secure", "lockdown", "evacuate", "shelter"]


def test_bad_edit_keeps_the_last_good_version(directory, caplog):
    registry = PlaybookRegistry(directory)
    registry.load()
    good = registry.get("lockdown")
    path = directory / "lockdown.yaml"
    text = path.read_text()
    path.write_text(text.replace("escalate_after_seconds: 120", "escalte_after_seconds: 120", 1))
    with caplog.at_level(logging.WARNING, logger="emergency.playbooks.registry"):
        problems = registry.load()
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{path}:")
    assert "unknown field 'escalte_after_seconds'" in str(problems[0])
    assert registry.problems == problems
    assert registry.get("lockdown") is good
    assert "escalte_after_seconds" in caplog.text


def test_good_edit_replaces_with_a_new_version(directory):
    registry = PlaybookRegistry(directory)
    registry.load()
    old = registry.get("lockdown")
    path = directory / "lockdown.yaml"
    path.write_text(path.read_text().replace("deadline_minutes: 10 ", "deadline_minutes: 12 "))
    assert registry.load() == []
    new = registry.get("lockdown")
    assert new.accountability.deadline_minutes == 12
    assert new.version != old.version


def test_bad_file_on_first_load_is_skipped(directory):
    (directory / "custom.yaml").write_text("key: custom\nname: [\n")
    registry = PlaybookRegistry(directory)
    problems = registry.load()
    assert len(problems) == 1 and "YAML syntax error" in str(problems[0])
    assert registry.get("custom") is None
    assert registry.get("lockdown") is not None


def test_deleted_file_is_dropped_and_reported(directory):
    registry = PlaybookRegistry(directory)
    registry.load()
    (directory / "medical.yaml").unlink()
    assert registry.load() == []
    assert registry.get("medical") is None
    (directory / "lockdown.yaml").unlink()
    problems = registry.load()
    assert registry.get("lockdown") is None
    assert ["no playbook with key 'lockdown'" in str(problem) for problem in problems] == [True]


def test_snapshot_round_trip(directory):
    registry = PlaybookRegistry(directory)
    registry.load()
    for playbook in registry.all():
        assert Playbook.from_dict(playbook.to_dict()) == playbook


def test_concurrent_reads_during_reloads(directory):
    registry = PlaybookRegistry(directory)
    registry.load()
    errors = []

    def read():
        for _ in range(200):
            if registry.get("lockdown") is None or len(registry.all()) != 8:
                errors.append("missing playbook during reload")

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    for _ in range(3):
        registry.load()
    for thread in readers:
        thread.join()
    assert errors == []
