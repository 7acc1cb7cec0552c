"""CSV import and export of the directory: round trips, updates, dry runs, all-or-nothing, every error."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from emergency.directory.csv_io import ImportFailed, export_directory, import_directory
from emergency.directory.models import Partner, Person, Room, School, partner_schools, person_schools

SCHOOLS = """\
code,name,address,timezone,dismissal_time
PAE,Park Avenue Elementary,"75 Park Avenue, Port Chester, NY",America/New_York,15:05
PCMS,Port Chester Middle School,113 Bowman Avenue,America/New_York,14:50
"""
ROOMS = """\
school_code,number,name,floor,kind,capacity
PAE,101,Room 101,1,classroom,24
PAE,GYM,Gymnasium,1,gym,120
PCMS,204,Room 204,2,classroom,28
PCMS,NURSE,Nurse's Office,1,nurse,
"""
PEOPLE = """\
name,role,mobile,email,schools,home_room,active
Zoë O'Brien-Núñez,teacher,(914) 555-0101,Zoe.OBrien-Nunez@pcsd.example.org,PCMS,204,yes
Marisol Gutiérrez,district_admin,914-555-0102,marisol@pcsd.example.org,,,yes
Héctor D'Amico,staff,,hector@pcsd.example.org,PAE;PCMS,,yes
"""
PARTNERS = """\
agency,name,role,mobile,email,schools,active
Port Chester Police Department,Sgt. Anthony Russo,police,+1 914 555 0150,russo@pcpd.example.org,PAE;PCMS,yes
"""
GOOD = {"schools": SCHOOLS, "rooms": ROOMS, "people": PEOPLE, "partners": PARTNERS}


def write(folder: Path, **files: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, content in files.items():
        path = folder / f"{kind}.csv"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def counts(session) -> dict[str, int]:
    tables = {"schools": School, "rooms": Room, "people": Person, "partners": Partner}
    out = {name: session.scalar(select(func.count()).select_from(model)) for name, model in tables.items()}
    out["person_schools"] = session.scalar(select(func.count()).select_from(person_schools))
    out["partner_schools"] = session.scalar(select(func.count()).select_from(partner_schools))
    return out


def problems_of(session, folder: Path, **kwargs) -> list[str]:
    with pytest.raises(ImportFailed) as caught:
        import_directory(session, folder, **kwargs)
    return caught.value.problems


def person(session, email: str) -> Person:
    return session.scalar(select(Person).where(Person.email == email))


# ------------------------------------------------------------------------------------------ happy paths

def test_import_creates_everything_with_normalised_values(session, tmp_path):
    report = import_directory(session, write(tmp_path / "in", **GOOD))

    assert report.created == {"schools": 2, "rooms": 4, "people": 3, "partners": 1}
    zoe = person(session, "zoe.obrien-nunez@pcsd.example.org")
    assert zoe.name == "Zoë O'Brien-Núñez"
    assert zoe.mobile == "+19145550101"
    assert [s.code for s in zoe.schools] == ["PCMS"]
    assert (zoe.home_room.school.code, zoe.home_room.number) == ("PCMS", "204")
    assert person(session, "hector@pcsd.example.org").mobile is None
    assert person(session, "marisol@pcsd.example.org").schools == []
    russo = session.scalar(select(Partner))
    assert russo.mobile == "+19145550150" and [s.code for s in russo.schools] == ["PAE", "PCMS"]
    nurse = session.scalar(select(Room).where(Room.number == "NURSE"))
    assert nurse.capacity is None and nurse.kind == "nurse" and nurse.name == "Nurse's Office"


def test_round_trip_keeps_accents_apostrophes_and_hyphens(session, tmp_path):
    import_directory(session, write(tmp_path / "in", **GOOD))
    first = export_directory(session, tmp_path / "out1")

    report = import_directory(session, tmp_path / "out1")
    export_directory(session, tmp_path / "out2")

    assert first == {"schools.csv": 2, "rooms.csv": 4, "people.csv": 3, "partners.csv": 1}
    assert report.changes == [] and sum(report.created.values()) + sum(report.updated.values()) == 0
    for name in first:
        assert (tmp_path / "out1" / name).read_bytes() == (tmp_path / "out2" / name).read_bytes()
    people_csv = (tmp_path / "out1" / "people.csv").read_text(encoding="utf-8")
    assert "Zoë O'Brien-Núñez" in people_csv and "Héctor D'Amico" in people_csv


def test_export_puts_the_home_room_school_first(session, tmp_path):
    people = PEOPLE.replace("Zoë O'Brien-Núñez,teacher,(914) 555-0101,Zoe.OBrien-Nunez@pcsd.example.org,PCMS,204",
                            "Zoë O'Brien-Núñez,teacher,(914) 555-0101,Zoe.OBrien-Nunez@pcsd.example.org,PCMS;PAE,204")
    import_directory(session, write(tmp_path / "in", **{**GOOD, "people": people}))
    export_directory(session, tmp_path / "out")

    assert ",PCMS;PAE,204," in (tmp_path / "out" / "people.csv").read_text(encoding="utf-8")
    assert import_directory(session, tmp_path / "out").changes == []


def test_reimport_updates_by_natural_key_instead_of_duplicating(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", **GOOD))
    before = counts(session)
    write(tmp_path / "v2",
          schools=SCHOOLS.replace("14:50", "15:00"),
          rooms=ROOMS.replace("PCMS,204,Room 204,2,classroom,28", "PCMS,204,Room 204,2,classroom,30"),
          # Héctor now works only at PAE; Zoë changed phone.
          people=PEOPLE.replace("PAE;PCMS", "PAE").replace("(914) 555-0101", "914-555-0111"),
          partners=PARTNERS)

    report = import_directory(session, tmp_path / "v2")

    assert counts(session) == {**before, "person_schools": before["person_schools"] - 1}
    assert report.created == dict.fromkeys(report.created, 0)
    assert report.updated == {"schools": 1, "rooms": 1, "people": 2, "partners": 0}
    assert report.unchanged == {"schools": 1, "rooms": 3, "people": 1, "partners": 1}
    assert session.scalar(select(School).where(School.code == "PCMS")).dismissal_time == "15:00"
    assert [s.code for s in person(session, "hector@pcsd.example.org").schools] == ["PAE"]
    assert person(session, "zoe.obrien-nunez@pcsd.example.org").mobile == "+19145550111"
    assert "update school PCMS (Port Chester Middle School): dismissal_time 14:50 -> 15:00" in report.changes
    assert "update room PCMS 204: capacity 28 -> 30" in report.changes


def test_person_without_known_email_is_matched_by_mobile(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", **GOOD))
    people = "name,role,mobile,email,schools\nZoë O'Brien-Núñez,teacher,914-555-0101,zoe@new.example.org,PCMS\n"

    report = import_directory(session, write(tmp_path / "v2", people=people))

    assert report.updated["people"] == 1 and report.created["people"] == 0
    zoe = person(session, "zoe@new.example.org")
    assert zoe.mobile == "+19145550101"
    assert zoe.home_room.number == "204"  # no home_room column: left as it was


def test_two_people_can_swap_mobiles(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", **GOOD))
    swapped = PEOPLE.replace("(914) 555-0101", "X").replace("914-555-0102", "(914) 555-0101").replace("X",
                                                                                                    "914-555-0102")
    import_directory(session, write(tmp_path / "v2", people=swapped))

    assert person(session, "zoe.obrien-nunez@pcsd.example.org").mobile == "+19145550102"
    assert person(session, "marisol@pcsd.example.org").mobile == "+19145550101"


def test_rooms_and_people_may_refer_to_schools_already_in_the_database(session, tmp_path, make_school):
    make_school(code="OLD")
    rooms = "school_code,number\nOLD,1\n"
    people = "name,role,mobile,email,schools,home_room\nAna Ruiz,teacher,,ana@x.example.org,OLD,1\n"

    report = import_directory(session, write(tmp_path / "in", rooms=rooms, people=people))

    assert report.created == {"schools": 0, "rooms": 1, "people": 1, "partners": 0}
    room = session.scalar(select(Room))
    assert room.kind == "classroom" and room.capacity is None
    assert person(session, "ana@x.example.org").home_room_id == room.id


def test_bom_and_crlf_are_accepted(session, tmp_path):
    schools = ("\ufeff" + SCHOOLS).replace("\n", "\r\n").encode("utf-8")
    report = import_directory(session, write(tmp_path / "in", schools=schools))
    assert report.created["schools"] == 2


def test_dry_run_changes_nothing_and_lists_the_changes(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", schools=SCHOOLS, rooms=ROOMS))
    session.commit()
    before = counts(session)
    rooms = ROOMS + "PAE,102,Room 102,1,classroom,24\n"

    report = import_directory(session, write(tmp_path / "v2", **{**GOOD, "rooms": rooms,
                                                                  "schools": SCHOOLS.replace("15:05", "15:10")}),
                              dry_run=True)

    session.rollback()
    assert counts(session) == before
    assert session.scalar(select(School).where(School.code == "PAE")).dismissal_time == "15:05"
    assert report.dry_run
    assert report.created == {"schools": 0, "rooms": 1, "people": 3, "partners": 1}
    assert report.updated == {"schools": 1, "rooms": 0, "people": 0, "partners": 0}
    assert report.unchanged == {"schools": 1, "rooms": 4, "people": 0, "partners": 0}
    assert "create room PAE 102" in report.changes
    assert "update school PAE (Park Avenue Elementary): dismissal_time 15:05 -> 15:10" in report.changes
    assert "create person Zoë O'Brien-Núñez <zoe.obrien-nunez@pcsd.example.org>" in report.changes
    assert report.lines()[0].startswith("Dry run: nothing was changed")


def test_changes_never_show_a_whole_mobile(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", **GOOD))
    report = import_directory(session, write(tmp_path / "v2", people=PEOPLE.replace("(914) 555-0101", "914-555-0111")),
                              dry_run=True)
    [change] = report.changes
    assert "+19145550101" not in change and "0101" in change and "0111" in change


# ------------------------------------------------------------------------------------------ all or nothing

def test_one_bad_row_among_good_ones_leaves_the_database_exactly_as_before(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", **GOOD))
    session.commit()
    before = counts(session)
    before_export = export_directory(session, tmp_path / "before")
    rooms = ROOMS.replace("28", "35") + "PAE,102,Room 102,1,classroom,24\nPAE,103,Room 103,1,classroom,lots\n"
    people = PEOPLE.replace("PAE;PCMS", "PAE") + "New Teacher,teacher,914-555-0120,new@pcsd.example.org,PAE,101\n"

    problems = problems_of(session, write(tmp_path / "v2", **{**GOOD, "rooms": rooms, "people": people}))

    assert problems == ["rooms.csv:7: capacity: must be a whole number of 0 or more, got 'lots'"]
    session.rollback()
    assert counts(session) == before
    assert export_directory(session, tmp_path / "after") == before_export
    for name in before_export:
        assert (tmp_path / "after" / name).read_bytes() == (tmp_path / "before" / name).read_bytes()


def test_a_database_error_while_writing_rolls_everything_back(session, tmp_path, monkeypatch):
    flush = session.flush

    def failing_flush(*args, **kwargs):
        if session.new:  # the import's rows are about to be written
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return flush(*args, **kwargs)

    monkeypatch.setattr(session, "flush", failing_flush)
    problems = problems_of(session, write(tmp_path / "in", **GOOD))
    monkeypatch.undo()

    assert problems == ["(database): disk I/O error; nothing was imported"]
    assert counts(session) == dict.fromkeys(counts(session), 0)


# ------------------------------------------------------------------------------------------ every problem

PEOPLE_HEAD = "name,role,mobile,email,schools,home_room\n"
PARTNER_HEAD = "agency,name,role,mobile,email,schools\n"


@pytest.mark.parametrize(("files", "expected"), [
    ({"schools": "code,name\nX,Y\n"}, "schools.csv:1: timezone: required column is missing"),
    ({"schools": "code,name,timezone,colour\nX,Y,UTC,red\n"},
     "schools.csv:1: colour: unknown column (expected: code, name, address, timezone, dismissal_time, sourced_id)"),
    ({"schools": "code,name,timezone,name\nX,Y,UTC,Z\n"}, "schools.csv:1: name: column appears twice"),
    ({"schools": "code,name,timezone\nX,,UTC\n"}, "schools.csv:2: name: is empty"),
    ({"schools": "code,name,timezone\nX,Y,Mars/Olympus\n"},
     "schools.csv:2: timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as America/New_York"),
    ({"schools": "code,name,timezone,dismissal_time\nX,Y,UTC,3pm\n"},
     "schools.csv:2: dismissal_time: must be a 24-hour time HH:MM, got '3pm'"),
    ({"schools": "code,name,timezone\nX,Y,UTC\nX,Z,UTC\n"},
     "schools.csv:3: code: duplicate school code 'X' (also on line 2)"),
    ({"schools": "code,name,timezone\nX;Y,Z,UTC\n"},
     "schools.csv:2: code: must not contain ';' (people.csv and partners.csv use it between codes)"),
    ({"schools": f"code,name,timezone\nX,{'n' * 201},UTC\n"}, "schools.csv:2: name: is longer than 200 characters"),
    ({"rooms": "school_code,number\nNOPE,1\n"}, "rooms.csv:2: school_code: unknown school code 'NOPE'"),
    ({"rooms": "school_code,number,capacity\nPAE,1,-3\n"},
     "rooms.csv:2: capacity: must be a whole number of 0 or more, got '-3'"),
    ({"rooms": "school_code,number,kind\nPAE,1,pool\n"},
     "rooms.csv:2: kind: unknown kind 'pool' (expected one of: classroom, gym, cafeteria, office, library, "
     "auditorium, lab, nurse, other)"),
    ({"rooms": "school_code,number\nPAE,101\nPCMS,101\nPAE,101\n"},
     "rooms.csv:4: number: duplicate room number '101' in school PAE (also on line 2)"),
    ({"rooms": "school_code,number\nPAE,12a\nPAE,12A\n"},
     "rooms.csv:3: number: duplicate room number '12A' in school PAE (also on line 2)"),
    ({"rooms": "school_code,number\nPAE,\n"}, "rooms.csv:2: number: is empty"),
    ({"people": PEOPLE_HEAD + "A B,teacher,555-12,a@x.example.org,PAE,\n"},
     "people.csv:2: mobile: '555-12' is not a valid phone number"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@@x,PAE,\n"}, "people.csv:2: email: 'a@@x' is not an email address"),
    ({"people": PEOPLE_HEAD + "A B,janitor,,a@x.example.org,PAE,\n"},
     "people.csv:2: role: unknown role 'janitor' (expected one of: district_admin, school_admin, teacher, "
     "staff, nurse, security)"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@x.example.org,PAE;ZZZ,\n"},
     "people.csv:2: schools: unknown school code 'ZZZ'"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@x.example.org,PAE,999\n"},
     "people.csv:2: home_room: unknown room '999' in school PAE"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@x.example.org,PCMS;PAE,101\n"},
     "people.csv:2: home_room: unknown room '101' in school PCMS"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@x.example.org,,\n"},
     "people.csv:2: schools: is empty (only district admins may belong to no school)"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,,PAE,\n"},
     "people.csv:2: email: is empty, and so is mobile: give at least one"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@x.example.org,PAE,\nC D,teacher,,A@X.example.org,PAE,\n"},
     "people.csv:3: email: duplicate email a@x.example.org (also on line 2)"),
    ({"people": PEOPLE_HEAD + "A B,teacher,914-555-0101,,PAE,\nC D,teacher,+19145550101,,PAE,\n"},
     "people.csv:3: mobile: duplicate mobile +19145550101 (also on line 2)"),
    ({"people": "name,role,email,schools\nA B,teacher,a@x.example.org,PAE\n"},
     "people.csv:1: mobile: required column is missing"),
    ({"people": PEOPLE_HEAD + "A B,teacher,,a@x.example.org,PAE,,extra\n"},
     "people.csv:2: (row): has 7 values but the header names 6 columns"),
    ({"partners": PARTNER_HEAD + "PCPD,Officer Ruiz,swat,,ruiz@pd.example.org,PAE\n"},
     "partners.csv:2: role: unknown role 'swat' (expected one of: police, fire, ems, emergency_management, other)"),
    ({"partners": PARTNER_HEAD + ",Officer Ruiz,police,,ruiz@pd.example.org,PAE\n"},
     "partners.csv:2: agency: is empty"),
    ({"partners": PARTNER_HEAD + "PCPD,Officer Ruiz,police,911,ruiz@pd.example.org,PAE\n"},
     "partners.csv:2: mobile: '911' is not a valid phone number"),
    ({"partners": "agency,name,role,mobile,email,schools,active\nPCPD,Ruiz,police,,r@pd.example.org,PAE,maybe\n"},
     "partners.csv:2: active: must be yes or no, got 'maybe'"),
])
def test_each_problem_is_reported_with_file_line_and_column(session, tmp_path, files, expected):
    base = {} if "schools" in files else {"schools": SCHOOLS, "rooms": ROOMS}
    problems = problems_of(session, write(tmp_path / "in", **{**base, **files}))
    assert problems == [expected]


def test_a_file_that_is_not_utf8_is_reported_at_its_first_bad_line(session, tmp_path):
    people = (PEOPLE_HEAD + "Ana Ruiz,teacher,,ana@x.example.org,PAE,\n"
              "Zoë Núñez,teacher,,zoe@x.example.org,PAE,\n").encode("cp1252")
    problems = problems_of(session, write(tmp_path / "in", schools=SCHOOLS, people=people))
    assert problems == ["people.csv:3: (file): is not UTF-8 text (byte 0xeb); save it as 'CSV UTF-8'"]


def test_line_numbers_are_physical_lines_even_with_quoted_newlines(session, tmp_path):
    schools = ("code,name,address,timezone\n"
               'A,Alpha,"1 Main St\nSuite 2",UTC\n'
               "\n"
               "B,Beta,,Nowhere/Land\n")
    problems = problems_of(session, write(tmp_path / "in", schools=schools))
    assert problems == ["schools.csv:5: timezone: unknown time zone 'Nowhere/Land'; use an IANA name such as "
                        "America/New_York"]


def test_every_problem_in_every_file_is_reported(session, tmp_path):
    schools = "code,name,timezone,colour\nA,Alpha,Europe/Nowhere,\n"
    rooms = "school_code,number,capacity\nA,1,x\nQ,2,3\n"
    people = (PEOPLE_HEAD + "Ana,teacher,123,ana@x.example.org,A,7\n"
              "Bo,boss,,bo@,A,\n")
    partners = PARTNER_HEAD + "PD,Ruiz,police,,ruiz@pd.example.org,\n"

    problems = problems_of(session, write(tmp_path / "in", schools=schools, rooms=rooms, people=people,
                                          partners=partners))

    assert problems == [
        "schools.csv:1: colour: unknown column (expected: code, name, address, timezone, dismissal_time, sourced_id)",
        "schools.csv:2: timezone: unknown time zone 'Europe/Nowhere'; use an IANA name such as America/New_York",
        "rooms.csv:2: capacity: must be a whole number of 0 or more, got 'x'",
        "rooms.csv:3: school_code: unknown school code 'Q'",
        "people.csv:2: mobile: '123' is not a valid phone number",
        "people.csv:2: home_room: unknown room '7' in school A",
        "people.csv:3: role: unknown role 'boss' (expected one of: district_admin, school_admin, teacher, staff, "
        "nurse, security)",
        "people.csv:3: email: 'bo@' is not an email address",
        "partners.csv:2: schools: is empty (only district admins may belong to no school)",
    ]


def test_a_mobile_still_held_by_someone_not_in_the_file_is_refused(session, tmp_path):
    # Zoë is matched by her email; the mobile she claims stays with Marisol, who is not in the file.
    import_directory(session, write(tmp_path / "v1", **GOOD))
    people = PEOPLE_HEAD + "Zoë O'Brien-Núñez,teacher,914-555-0102,zoe.obrien-nunez@pcsd.example.org,PCMS,\n"
    problems = problems_of(session, write(tmp_path / "v2", people=people))
    assert problems == ["people.csv:2: mobile: +19145550102 already belongs to Marisol Gutiérrez, "
                        "who is not in people.csv"]


def test_two_rows_cannot_update_the_same_person(session, tmp_path):
    import_directory(session, write(tmp_path / "v1", **GOOD))
    people = (PEOPLE_HEAD + "Zoë,teacher,914-555-0109,zoe.obrien-nunez@pcsd.example.org,PCMS,\n"
              "Zoë again,teacher,914-555-0101,zoe2@pcsd.example.org,PCMS,\n")
    problems = problems_of(session, write(tmp_path / "v2", people=people))
    assert problems == ["people.csv:3: mobile: +19145550101 belongs to Zoë O'Brien-Núñez, who is already "
                        "updated by line 2"]


def test_a_folder_without_any_file_or_missing_is_refused(session, tmp_path):
    (tmp_path / "empty").mkdir()
    assert problems_of(session, tmp_path / "empty") == [
        f"{tmp_path / 'empty'}: has none of schools.csv, rooms.csv, people.csv, partners.csv"]
    assert problems_of(session, tmp_path / "missing") == [f"{tmp_path / 'missing'}: is not a folder"]


def test_an_empty_file_is_reported(session, tmp_path):
    assert problems_of(session, write(tmp_path / "in", schools="")) == [
        "schools.csv:1: (file): is empty; the first line must name the columns"]


# ------------------------------------------------------------------------------------------ hostile cells

def test_export_escapes_cells_a_spreadsheet_would_run_as_formulas_and_the_import_reads_them_back(session, tmp_path):
    schools = SCHOOLS + 'EVIL,"=HYPERLINK(""http://evil.example"")",@SUM(A1),America/New_York,15:00\n'
    people = PEOPLE + "+cmd|' /C calc'!A0,teacher,,plus@pcsd.example.org,PCMS,,yes\n"
    import_directory(session, write(tmp_path / "in", **{**GOOD, "schools": schools, "people": people}))
    session.commit()

    export_directory(session, tmp_path / "out")

    exported = {kind: (tmp_path / "out" / f"{kind}.csv").read_text(encoding="utf-8") for kind in GOOD}
    cells = [cell for text in exported.values() for line in text.splitlines()[1:] for cell in line.split(",")]
    formulas = [cell for cell in cells if cell.lstrip('"').startswith(("=", "+", "-", "@"))]
    assert all(cell.startswith("+1914555") and cell[1:].isdigit() for cell in formulas)  # numbers run nothing
    assert "'=HYPERLINK" in exported["schools"] and "'@SUM(A1)" in exported["schools"]
    assert "'+cmd|" in exported["people"]
    session.rollback()
    before = counts(session)
    report = import_directory(session, tmp_path / "out")
    assert counts(session) == before and not report.changes


def test_a_capacity_beyond_what_the_column_holds_is_refused_by_the_dry_run_and_the_import(session, tmp_path):
    folder = write(tmp_path / "in", schools=SCHOOLS, rooms=ROOMS + "PAE,999,Huge,1,classroom,99999999999999999999999\n")
    expected = ["rooms.csv:6: capacity: must be at most 2147483647, got '99999999999999999999999'"]

    assert problems_of(session, folder, dry_run=True) == expected
    assert problems_of(session, folder) == expected
    assert session.scalar(select(func.count()).select_from(School)) == 0


@pytest.mark.parametrize("capacity", ["²", "٣", "1e3"])
def test_a_capacity_that_is_not_plain_digits_is_refused(session, tmp_path, capacity):
    folder = write(tmp_path / "in", schools=SCHOOLS, rooms=f"school_code,number,capacity\nPAE,1,{capacity}\n")

    assert problems_of(session, folder) == [
        f"rooms.csv:2: capacity: must be a whole number of 0 or more, got '{capacity}'"]


def test_a_nul_character_is_a_problem_not_a_crash(session, tmp_path):
    folder = write(tmp_path / "in", schools=SCHOOLS.replace("Park Avenue", "Park\x00Avenue"))

    for dry_run in (True, False):
        problems = problems_of(session, folder, dry_run=dry_run)
        assert problems == ["schools.csv:2: (file): contains a NUL character; save it as plain 'CSV UTF-8'"]
