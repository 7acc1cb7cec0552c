"""What the hand-written validators share: where a problem is, how a wrong value is named, and
the collection of every problem (a check never stops at the first).

Three validators read files a district edits by hand: playbooks (`playbooks/loader.py`), drill
rules (`compliance/rules.py`) and the directory CSV files (`directory/csv_io.py`). Each walks its
own format, and each reports through a `Checker`, so a district reads one voice from all three:

- a *path* names the value: `notifications[1].channels` in YAML, the column in a CSV row;
- a *problem* is `file:line:column: path: message` (CSV: `file:line: column: message`);
- a wrong value is named by `kind_of` ("the text 'drill'", "a list", "nothing"), and a choice lists
  what it expected (`unknown role 'boss' (expected one of: ...)`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where it is and what is wrong (`column` None: a CSV file's lines)."""

    file: str
    line: int
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        position = f"{self.line}" if self.column is None else f"{self.line}:{self.column}"
        return f"{self.file}:{position}: {where}{self.message}"


def dotted(path: Path_) -> str:
    """('rules', 0, 'channels') -> 'rules[0].channels'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def kind_of(value: Any) -> str:
    """How a wrong value reads in a message: its kind, and the value when it is short."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'" if len(value) <= 40 else f"the text '{value[:37]}...'"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """A value as a message quotes it: text in quotes, anything else by its kind."""
    return f"'{value}'" if isinstance(value, str) else kind_of(value)


def one_of(choices: Iterable[Any]) -> str:
    """'(expected one of: a, b)'."""
    return f"(expected one of: {', '.join(str(choice) for choice in choices)})"


class Problems(list):
    """Every problem found so far, kept so that they print file by file, line by line."""

    def __init__(self, files: Sequence[str] = ()):
        super().__init__()
        self.files = list(files)

    def add(self, file: str, line: int, column: str, message: str) -> None:
        """A problem in a CSV file: its line and the column's name."""
        self.record(Problem(file, line, None, column, message))

    def record(self, problem: Problem) -> None:
        rank = self.files.index(problem.file) if problem.file in self.files else len(self.files)
        self.append((rank, problem.line, len(self), problem))

    def messages(self) -> list[str]:
        """File by file, line by line: the order someone fixing the files works in."""
        return [str(problem) for *_order, problem in sorted(self, key=lambda entry: entry[:3])]


class Checker:
    """Reads values at paths, reporting each problem through `report(path, message)`.

    Every reader returns the checked value, or None after reporting why it is unusable; `ok` stays
    True until the first problem. Subclasses add the readers of their own format.
    """

    def __init__(self, report: Callable[[Path_, str], None]) -> None:
        self.report = report
        self.ok = True

    def error(self, path: Path_, message: str) -> None:
        self.ok = False
        self.report(path, message)

    def wrong(self, path: Path_, expected: str, value: Any) -> None:
        """`value` is not of the kind `expected` ("must be a list, got the text 'drill'")."""
        self.error(path, f"must be {expected}, got {kind_of(value)}")

    def fields(self, path: Path_, value: dict, allowed: Sequence[str], required: Sequence[str] = (), *,
               misplaced: Callable[[str], str | None] = lambda key: None) -> None:
        """Unknown keys (with the nearest allowed one as a hint) and missing required ones.

        `misplaced(key)` may explain a key that is known elsewhere but does not belong here.
        """
        for key in value:
            if key in allowed:
                continue
            reason = misplaced(key) if isinstance(key, str) else None
            if reason is None:
                close = difflib.get_close_matches(key, allowed, n=1) if isinstance(key, str) else []
                reason = (f"unknown field '{key}'; did you mean '{close[0]}'?" if close
                          else f"unknown field '{key}' (allowed: {', '.join(allowed)})")
            self.error(path + (key,), reason)
        for key in required:
            if key not in value:
                self.error(path + (key,), "required field is missing")

    def mapping(self, path: Path_, value: Any, allowed: Sequence[str], required: Sequence[str] = (),
                expected: str = "a mapping of fields") -> dict | None:
        if not isinstance(value, dict):
            self.wrong(path, expected, value)
            return None
        self.fields(path, value, allowed, required)
        return value

    def text(self, path: Path_, value: Any, max_length: int | None = None, *, allow_empty: bool = False
             ) -> str | None:
        if not isinstance(value, str):
            self.wrong(path, "text", value)
            return None
        value = value.strip()
        if not value and not allow_empty:
            self.error(path, "must not be empty")
            return None
        if max_length is not None and len(value) > max_length:
            self.error(path, f"is {len(value)} characters long; at most {max_length} allowed")
            return None
        return value

    def boolean(self, path: Path_, value: Any) -> bool | None:
        if not isinstance(value, bool):
            self.wrong(path, "true or false", value)
            return None
        return value

    def integer(self, path: Path_, value: Any, low: int | None = None, high: int | None = None) -> int | None:
        # bool is an int in Python; `required: yes` is a mistake, not the number 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong(path, "a whole number", value)
            return None
        if low is not None and high is not None and not low <= value <= high:
            self.error(path, f"must be between {low} and {high}, got {value}")
            return None
        if low is not None and value < low:
            what = "negative" if value < 0 else f"less than {low}"
            self.error(path, f"must not be {what} (got {value})")
            return None
        return value

    def choice(self, path: Path_, value: Any, choices: Iterable[str], what: str) -> str | None:
        choices = tuple(choices)
        if not isinstance(value, str) or value not in choices:
            self.error(path, f"unknown {what} {shown(value)} {one_of(choices)}")
            return None
        return value

    def choice_list(self, path: Path_, value: Any, choices: Iterable[str], what: str, *,
                    allow_empty: bool = False, valid: Callable[[str], bool] | None = None,
                    expected: str = "a list") -> tuple[str, ...] | None:
        """A list of unique strings, each one of `choices` (or accepted by `valid`)."""
        choices = tuple(choices)

        def read(where: Path_, item: Any) -> str | None:
            if isinstance(item, str) and (valid(item) if valid else item in choices):
                return item
            self.error(where, f"unknown {what} {shown(item)} {one_of(choices)}")
            return None

        return self.unique_list(path, value, read, what, expected=expected, allow_empty=allow_empty)

    def unique_list(self, path: Path_, value: Any, read: Callable[[Path_, Any], Any], what: str, *,
                    expected: str = "a list", allow_empty: bool = False) -> tuple | None:
        """A list whose items `read(path, item)` checks (None: unusable), with no item twice."""
        if not isinstance(value, list):
            self.wrong(path, expected, value)
            return None
        if not value and not allow_empty:
            self.error(path, "must list at least one value")
            return None
        result: list = []
        ok = True
        for index, item in enumerate(value):
            checked = read(path + (index,), item)
            if checked is None:
                ok = False
            elif checked in result:
                self.error(path + (index,), f"duplicate {what} '{checked}'")
                ok = False
            else:
                result.append(checked)
        return tuple(result) if ok else None
