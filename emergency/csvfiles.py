"""Reading CSV files for an all-or-nothing import: rows with their physical line, every problem as
`file:line: column: reason`, in the order someone fixing the files works in.

The directory import (directory/csv_io.py) and the OneRoster import (roster/oneroster.py) both read
their files through here, so a district sees the same kind of message from both.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emergency.checking import Problems

__all__ = ["Problems", "Row", "escape_formula", "read_rows", "unescape_formula"]


@dataclass
class Row:
    line: int
    values: dict[str, str]  # only the columns the file has, stripped, keyed by their canonical name


def read_rows(path: Path, problems: Problems, columns: Sequence[str], required: Sequence[str], *,
              file: str | None = None, unknown_columns: str = "problem") -> list[Row] | None:
    """The rows of one CSV file, or None when it is absent.

    Column names match `columns` case-insensitively and are keyed by the spelling in `columns`.
    `unknown_columns`: "problem" reports a column not in `columns`; "ignore" skips it (standards such
    as OneRoster let exporters add their own columns).
    """
    file = file or path.name
    if not path.is_file():
        return None
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        problems.add(file, line, "(file)", f"is not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                                           "save it as 'CSV UTF-8'")
        # Keep going with replacement characters: the other problems are still worth reporting,
        # and nothing is imported anyway.
        text = raw.decode("utf-8-sig", errors="replace")
    if "\x00" in text:  # no database column takes a NUL: a problem here, not a crash in the real import
        line = text[:text.index("\x00")].count("\n") + 1
        problems.add(file, line, "(file)", "contains a NUL character; save it as plain 'CSV UTF-8'")
        text = text.replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    header: list[str] | None = None
    end = 0  # physical line the previous record ended on
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if header is None:
                if any(value.strip() for value in record):
                    header = _header(file, record, start, problems, columns, required, unknown_columns)
                continue
            if not any(value.strip() for value in record):
                continue  # blank lines and the ",,,," rows spreadsheets leave at the end
            if len(record) > len(header) and any(v.strip() for v in record[len(header):]):
                problems.add(file, start, "(row)", f"has {len(record)} values but the header names "
                                                   f"{len(header)} columns")
            values = {name: (unescape_formula(record[i].strip()) if i < len(record) else "")
                      for i, name in enumerate(header) if name}
            rows.append(Row(start, values))
    except csv.Error as exc:
        problems.add(file, end + 1, "(file)", f"is not valid CSV ({exc})")
    if header is None:
        problems.add(file, 1, "(file)", "is empty; the first line must name the columns")
    return rows


def _header(file: str, record: list[str], line: int, problems: Problems, columns: Sequence[str],
            required: Sequence[str], unknown_columns: str) -> list[str]:
    """Canonical column names; '' for the columns the rows must not use."""
    known = {name.lower(): name for name in columns}
    seen: set[str] = set()
    header = []
    for position, raw in enumerate(record, start=1):
        name = known.get(raw.strip().lower())
        if not raw.strip():
            problems.add(file, line, f"(column {position})", "has no name")
        elif name is None:
            if unknown_columns == "problem":
                problems.add(file, line, raw.strip().lower(), f"unknown column (expected: {', '.join(columns)})")
        elif name in seen:
            problems.add(file, line, name, "column appears twice")
        else:
            seen.add(name)
            header.append(name)
            continue
        header.append("")
    for name in required:
        if name not in seen:
            problems.add(file, line, name, "required column is missing")
    return header


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); an export
# writes such cells behind a single quote, which reading takes off again. A plain signed number
# (an E.164 mobile, +19145550101) calls no function, so it stays as it is and the files stay readable.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+")


def escape_formula(value: str) -> str:
    """The cell as an export writes it: a formula-looking cell behind a single quote."""
    if value.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def unescape_formula(value: str) -> str:
    """The cell as escape_formula received it."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_STARTS) else value
