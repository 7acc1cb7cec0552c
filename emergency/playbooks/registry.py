"""The playbooks currently in force, reloadable while the app runs.

A reload must never make things worse during an emergency: a file that fails validation
keeps serving its last good version, and only files that pass replace what was loaded.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from emergency.playbooks.loader import playbook_files, read_playbook, resolve_keys, sorted_playbooks
from emergency.playbooks.model import SRP_ACTIONS, Playbook
from emergency.yamlfile import Problem

log = logging.getLogger(__name__)


class PlaybookRegistry:
    """Thread-safe store of the playbooks loaded from one directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._playbooks: dict[str, Playbook] = {}
        self._by_file: dict[str, Playbook] = {}  # last good playbook of each file
        self._problems: list[Problem] = []
        self._lock = threading.Lock()  # guards the three fields above
        self._load_lock = threading.Lock()  # one load at a time; readers are never blocked by parsing

    def load(self) -> list[Problem]:
        """Load or reload every file; bad files keep their last good version. Returns the problems."""
        with self._load_lock:
            problems: list[Problem] = []
            if not self.directory.is_dir():
                problems.append(Problem(str(self.directory), 1, 1, "", "playbook directory not found"))
            with self._lock:
                previous = dict(self._by_file)
            entries = []
            by_file: dict[str, Playbook] = {}
            for path in playbook_files(self.directory):
                file = str(path)
                try:
                    playbook, file_problems, loaded = read_playbook(path)
                except Exception as exc:  # noqa: BLE001 - one broken file must not stop the others
                    log.exception("unexpected error loading playbook %s", file)
                    playbook, loaded = None, None
                    file_problems = [Problem(file, 1, 1, "", f"internal error: {exc}")]
                problems.extend(file_problems)
                if playbook is None and file in previous:
                    playbook = previous[file]
                    log.warning("playbook %s is invalid; still using its last good version %s",
                                file, playbook.version)
                if playbook is not None:
                    by_file[file] = playbook
                    key_at = loaded.where(("key",)) if loaded is not None else (1, 1)
                    entries.append((file, playbook, key_at))
            playbooks, more = resolve_keys(self.directory, entries)
            problems.extend(more)
            for file in previous.keys() - by_file.keys():
                log.info("playbook file %s is gone; its playbook %s is no longer offered",
                         file, previous[file].key)
            with self._lock:
                for key, playbook in playbooks.items():
                    old = self._playbooks.get(key)
                    if old is not None and old.version != playbook.version:
                        log.info("playbook %s updated: version %s -> %s", key, old.version, playbook.version)
                self._playbooks = playbooks
                self._by_file = by_file
                self._problems = problems
            for problem in problems:
                log.warning("playbook problem: %s", problem)
            log.info("%d playbooks loaded from %s, %d problems",
                     len(playbooks), self.directory, len(problems))
            return list(problems)

    def get(self, key: str) -> Playbook | None:
        """The playbook with `key`, or None."""
        with self._lock:
            return self._playbooks.get(key)

    def all(self) -> list[Playbook]:
        """Every playbook: the five SRP actions in SRP order, then the rest by name."""
        with self._lock:
            playbooks = list(self._playbooks.values())
        return sorted_playbooks(playbooks)

    def missing_actions(self) -> list[str]:
        """The five SRP actions (hold, secure, lockdown, evacuate, shelter) that no loaded playbook offers."""
        with self._lock:
            return [action for action in SRP_ACTIONS if action not in self._playbooks]

    @property
    def problems(self) -> list[Problem]:
        """The problems found by the last load."""
        with self._lock:
            return list(self._problems)
