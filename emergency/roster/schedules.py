"""Bell schedules: `bell_schedules.csv` beside the directory, and which period is current at a moment.

    school_code,day_type,days,period,start,end
    PCMS,regular,mon;tue;wed;thu;fri,1,08:00,08:45

A school's rows in the file replace its whole schedule (schools not in the file keep theirs). A
weekday belongs to at most one day type per school. Times are the school's local time; a period
runs from `start` up to, not including, `end`. A school with no schedule (an elementary school)
keeps its homerooms all day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from emergency.csvfiles import Problems, read_rows
from emergency.directory.models import School
from emergency.roster.models import BellPeriod
from emergency.roster.oneroster import RosterImportFailed

FILE = "bell_schedules.csv"
COLUMNS = ("school_code", "day_type", "days", "period", "start", "end")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Moment:
    """Where a moment falls in a school's day: its day type and current period (None: outside class time)."""

    day_type: str | None
    period: str | None
    scheduled: bool  # whether the school has a bell schedule at all


def _time(value: str) -> str | None:
    match = _TIME.match(value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return f"{int(match[1]):02d}:{match[2]}"


def import_schedules(session: Session, path: str | Path, *, dry_run: bool = False) -> dict[str, int]:
    """Check bell_schedules.csv and replace the listed schools' schedules; returns periods per school code."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE
    problems = Problems([path.name])
    rows = read_rows(path, problems, COLUMNS, COLUMNS)
    if rows is None:
        raise RosterImportFailed([f"{path}: no such file"])
    schools = {s.code: s for s in session.scalars(select(School))}
    periods: dict[str, list[dict]] = {}
    weekday_owner: dict[tuple[str, str], str] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for row in rows:
        v = row.values

        def problem(column: str, message: str, line: int = row.line) -> None:
            problems.add(path.name, line, column, message)

        code, day_type, period = v.get("school_code", ""), v.get("day_type", ""), v.get("period", "")
        for column in COLUMNS:
            if not v.get(column):
                problem(column, "is empty")
        if code and code not in schools:
            problem("school_code", f"unknown school code '{code}'")
        for column, value in (("day_type", day_type), ("period", period)):
            if len(value) > 32:
                problem(column, "is longer than 32 characters")
        days = [d.strip().lower()[:3] for d in v.get("days", "").split(";") if d.strip()]
        for day in days:
            if day not in WEEKDAYS:
                problem("days", f"unknown weekday '{day}' (use mon;tue;wed;thu;fri)")
            elif weekday_owner.setdefault((code, day), day_type) != day_type:
                problem("days", f"{day} already belongs to day type '{weekday_owner[(code, day)]}' of {code}")
        start, end = _time(v.get("start", "")), _time(v.get("end", ""))
        for column, value in (("start", start), ("end", end)):
            if v.get(column) and value is None:
                problem(column, f"must be a 24-hour time HH:MM, got '{v[column]}'")
        if start and end and start >= end:
            problem("end", f"must be after start ({start})")
        key = (code, day_type, period)
        if key in seen:
            problem("period", f"period '{period}' of {code} {day_type} appears twice (also on line {seen[key]})")
        seen.setdefault(key, row.line)
        periods.setdefault(code, []).append({"day_type": day_type, "days": ";".join(days), "period": period,
                                             "starts": start, "ends": end})
    if problems:
        raise RosterImportFailed(problems.messages())
    if not dry_run:
        for code, rows_of_school in periods.items():
            school_id = schools[code].id
            session.execute(delete(BellPeriod).where(BellPeriod.school_id == school_id))
            session.execute(insert(BellPeriod), [{"school_id": school_id, **row} for row in rows_of_school])
    return {code: len(rows_of_school) for code, rows_of_school in periods.items()}


def moment(session: Session, school: School, at: datetime) -> Moment:
    """The day type and period current at the school at `at` (an aware datetime)."""
    try:
        local = at.astimezone(ZoneInfo(school.timezone))
    except Exception:  # an unknown zone must not stop a run
        local = at
    weekday, clock = WEEKDAYS[local.weekday()], local.strftime("%H:%M")
    rows = list(session.scalars(select(BellPeriod).where(BellPeriod.school_id == school.id)))
    if not rows:
        return Moment(None, None, scheduled=False)
    today = [row for row in rows if weekday in row.days.split(";")]
    for row in sorted(today, key=lambda r: r.starts):
        if row.starts <= clock < row.ends:
            return Moment(row.day_type, row.period, scheduled=True)
    return Moment(today[0].day_type if today else None, None, scheduled=True)
