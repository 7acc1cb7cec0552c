"""Write examples/demo-district/oneroster/ and bell_schedules.csv: a small fictional OneRoster export.

Run `.venv/bin/python tools/make_demo_roster.py` after tools/make_demo_district.py. The teachers and
rooms come from the demo directory (people.csv): Park Avenue Elementary keeps homerooms all day,
the middle school has six periods. Every student name is made up.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emergency.roster.sample import SampleSchool, SampleTeacher, periods_of, write_oneroster  # noqa: E402

DEMO = REPO / "examples" / "demo-district"
SCHOOLS = {"PAE": ("Park Avenue Elementary", True), "PCMS": ("Port Chester Middle School", False)}


def main() -> None:
    with open(DEMO / "people.csv", encoding="utf-8") as handle:
        people = [row for row in csv.DictReader(handle) if row["role"] == "teacher" and row["home_room"]]
    schools = []
    for code, (name, elementary) in SCHOOLS.items():
        teachers = [SampleTeacher(p["email"], p["home_room"], p["name"]) for p in people
                    if p["schools"].split(";")[0] == code]
        schools.append(SampleSchool(f"org-{code.lower()}", code, name, elementary, teachers))
    written = write_oneroster(DEMO / "oneroster", schools, students_per_class=8, periods=6, seed=17,
                              district="org-pcsd")
    with open(DEMO / "bell_schedules.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["school_code", "day_type", "days", "period", "start", "end"])
        writer.writerows(["PCMS", "regular", "mon;tue;wed;thu;fri", *period] for period in periods_of(6))
    print(f"wrote {written} to {(DEMO / 'oneroster').relative_to(REPO)} and bell_schedules.csv")


if __name__ == "__main__":
    main()
