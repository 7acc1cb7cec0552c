"""Bell schedules: the file's checks, and which period a moment falls in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emergency.roster.oneroster import RosterImportFailed
from emergency.roster.schedules import Moment, import_schedules, moment

HEADER = "school_code,day_type,days,period,start,end\n"


def _write(tmp_path, text: str):
    path = tmp_path / "bell_schedules.csv"
    path.write_text(HEADER + text, encoding="utf-8")
    return path


def test_the_period_current_at_a_moment_in_the_schools_time_zone(session, make_school, tmp_path):
    school = make_school(code="MS")
    import_schedules(session, _write(tmp_path, "MS,regular,mon;tue;wed;thu,1,08:00,08:45\n"
                                               "MS,regular,mon;tue;wed;thu,2,08:50,09:35\n"
                                               "MS,early,fri,1,08:00,08:30\n"))
    tuesday = datetime(2026, 12, 1, 13, 55, tzinfo=UTC)  # 08:55 in New York
    assert moment(session, school, tuesday) == Moment("regular", "2", scheduled=True)
    passing, friday = tuesday.replace(minute=47), datetime(2026, 12, 4, 13, 10, tzinfo=UTC)
    saturday = datetime(2026, 12, 5, 13, 10, tzinfo=UTC)
    assert moment(session, school, passing) == Moment("regular", None, scheduled=True)
    assert moment(session, school, friday) == Moment("early", "1", scheduled=True)
    assert moment(session, school, saturday) == Moment(None, None, scheduled=True)
    assert moment(session, make_school(), tuesday) == Moment(None, None, scheduled=False)  # no schedule: homerooms


def test_a_new_file_replaces_the_schools_schedule(session, make_school, tmp_path):
    school = make_school(code="MS")
    import_schedules(session, _write(tmp_path, "MS,regular,mon,1,08:00,08:45\n"))
    assert import_schedules(session, _write(tmp_path, "MS,regular,mon,A,09:00,10:00\n")) == {"MS": 1}
    assert moment(session, school, datetime(2026, 11, 30, 14, 30, tzinfo=UTC)).period == "A"


def test_every_problem_is_reported_with_its_line(session, make_school, tmp_path):
    make_school(code="MS")
    path = _write(tmp_path, "MS,regular,mon;tue,1,08:00,08:45\n"
                            "XX,regular,mon,1,08:00,08:45\n"
                            "MS,late,tue,1,9am,08:45\n"
                            "MS,regular,mon,1,08:50,08:40\n"
                            "MS,regular,funday,2,,08:40\n")
    with pytest.raises(RosterImportFailed) as failed:
        import_schedules(session, path)
    assert failed.value.problems == [
        "bell_schedules.csv:3: school_code: unknown school code 'XX'",
        "bell_schedules.csv:4: days: tue already belongs to day type 'regular' of MS",
        "bell_schedules.csv:4: start: must be a 24-hour time HH:MM, got '9am'",
        "bell_schedules.csv:5: end: must be after start (08:50)",
        "bell_schedules.csv:5: period: period '1' of MS regular appears twice (also on line 2)",
        "bell_schedules.csv:6: start: is empty",
        "bell_schedules.csv:6: days: unknown weekday 'fun' (use mon;tue;wed;thu;fri)",
    ]
