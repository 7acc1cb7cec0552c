"""Every class of playbook mistake is reported at the right file:line:column and field path."""

from __future__ import annotations

import shutil

from emergency.playbooks.loader import check_directory, load_playbook_file, parse_playbook
from emergency.yamlfile import load_text
from tests.playbooks.helpers import BASE, STANDARD_DIR, assert_problem, problems_in, variant


def test_base_playbook_is_valid(tmp_path):
    file, problems = problems_in(tmp_path, BASE)
    assert problems == []
    playbook, _ = load_playbook_file(file)
    assert playbook.key == "test_lockdown"
    assert playbook.confirm_real is True
    assert playbook.source_file == file
    assert len(playbook.version) == 16


def test_yaml_syntax_error_is_reported_with_position(tmp_path):
    file, problems = problems_in(tmp_path, variant(("modes: [drill, real]", "modes: [drill, real")))
    assert len(problems) == 1
    assert problems[0].startswith(f"{file}:7:12: YAML syntax error: expected ',' or ']'")


def test_duplicate_yaml_key_is_reported_at_the_second_key(tmp_path):
    file, problems = problems_in(tmp_path, BASE + "name: Another name\n")
    assert_problem(problems, file, 36, 1, "name", "duplicate key 'name'")


def test_misspelt_field_is_reported_with_a_suggestion(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("    escalate_after_seconds: 120\n    priority: 50", "    escalte_after_seconds: 120\n    priority: 50"),
    ))
    assert_problem(problems, file, 25, 28, "notifications[1].escalte_after_seconds",
                   "unknown field 'escalte_after_seconds'; did you mean 'escalate_after_seconds'?")


def test_unknown_top_level_field_lists_the_allowed_fields(tmp_path):
    file, problems = problems_in(tmp_path, BASE + "colour: red\n")
    assert_problem(problems, file, 36, 9, "colour", "unknown field 'colour' (allowed: key, name")


def test_wrong_types_are_each_reported(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("name: Test lockdown", "name: 42"),
        ("modes: [drill, real]", "modes: drill"),
        ("    require_ack: true\n    escalate_after_seconds: 120\n    priority: 50",
         "    require_ack: 'yes'\n    escalate_after_seconds: 120\n    priority: high"),
        ("  reminder_minutes: 5", "  reminder_minutes: 2.5"),
        ("  - {step: Lock the door., role: teacher}", "  - Lock the door."),
    ))
    assert_problem(problems, file, 2, 7, "name", "must be text, got the number 42")
    assert_problem(problems, file, 6, 8, "modes", "must be a list, got the text 'drill'")
    assert_problem(problems, file, 24, 18, "notifications[1].require_ack", "must be true or false")
    assert_problem(problems, file, 26, 15, "notifications[1].priority", "must be a whole number, got the text 'high'")
    assert_problem(problems, file, 29, 21, "accountability.reminder_minutes", "must be a whole number")
    assert_problem(problems, file, 34, 5, "checklist[0]", "must be a mapping of fields")


def test_boolean_is_not_accepted_as_a_number(tmp_path):
    file, problems = problems_in(tmp_path, variant(("    priority: 0", "    priority: true")))
    assert_problem(problems, file, 18, 15, "notifications[0].priority", "must be a whole number")


def test_out_of_range_numbers(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("    escalate_after_seconds: 120\n    priority: 50", "    escalate_after_seconds: 10\n    priority: 50"),
        ("    priority: 0", "    priority: 500"),
        ("  deadline_minutes: 10", "  deadline_minutes: 1000"),
    ))
    assert_problem(problems, file, 18, 15, "notifications[0].priority", "must be between 0 and 100, got 500")
    assert_problem(problems, file, 25, 29, "notifications[1].escalate_after_seconds",
                   "must be between 30 and 3600, got 10")
    assert_problem(problems, file, 30, 21, "accountability.deadline_minutes", "must be between 1 and 240")


def test_unknown_role(tmp_path):
    file, problems = problems_in(tmp_path, variant(("  real: [teacher, staff]", "  real: [teacher, janitor]")))
    assert_problem(problems, file, 9, 19, "start_roles.real[1]", "unknown role 'janitor'")


def test_unknown_checklist_role(tmp_path):
    file, problems = problems_in(tmp_path, variant(("role: teacher}", "role: principal}")))
    assert_problem(problems, file, 34, 34, "checklist[0].role", "unknown role 'principal'")


def test_unknown_audience(tmp_path):
    file, problems = problems_in(tmp_path, variant(("  - audience: [all_staff]", "  - audience: [all_staff, parents]")))
    assert_problem(problems, file, 19, 27, "notifications[1].audience[1]", "unknown audience 'parents'")


def test_role_audience_must_name_a_person_role(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("  - audience: [all_staff]", "  - audience: [role:teacher, role:partner]")))
    assert_problem(problems, file, 19, 30, "notifications[1].audience[1]", "unknown audience 'role:partner'")
    assert len(problems) == 1


def test_unknown_channel(tmp_path):
    file, problems = problems_in(tmp_path, variant(("channels: [push, sms]", "channels: [push, fax]")))
    assert_problem(problems, file, 20, 22, "notifications[1].channels[1]", "unknown channel 'fax'")


def test_duplicate_channel(tmp_path):
    file, problems = problems_in(tmp_path, variant(("channels: [push, sms]", "channels: [push, sms, push]")))
    assert_problem(problems, file, 20, 27, "notifications[1].channels[2]", "duplicate channel 'push'")


def test_empty_channel_list(tmp_path):
    file, problems = problems_in(tmp_path, variant(("channels: [push, sms]", "channels: []")))
    assert_problem(problems, file, 20, 15, "notifications[1].channels", "at least one")


def test_unknown_template_variable(tmp_path):
    file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Update: {mesage} at {schol}"')))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update",
                   "unknown template variable {mesage} (did you mean {message}?)")
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update",
                   "unknown template variable {schol} (did you mean {school}?)")


def test_bad_brace_syntax(tmp_path):
    file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Update: {message"')))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update", "bad brace syntax")


def test_format_specs_are_rejected(tmp_path):
    file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Update: {message!r}"')))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update", "is not supported")


def test_literal_braces_are_allowed(tmp_path):
    _file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Update {{code}}: {message}"')))
    assert problems == []


def test_drill_wording_in_a_template_is_rejected(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ('"Update: {message}"', '"DRILL - THIS IS A DRILL. {message}"'),
        ('start: "LOCKDOWN at {school}. {reply_hint}"', 'start: "This  is a   drill at {school}. {reply_hint}"'),
    ))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update", "must not contain drill wording")
    assert_problem(problems, file, 15, 14, "notifications[0].templates.start", "must not contain drill wording")


def test_a_template_starting_with_drill_is_rejected(tmp_path):
    file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Drill: {message}"')))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update", "must not contain drill wording")


def test_sms_too_long(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ('"Update: {message}"', '"Update: {message} {message} {school}"')))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update",
                   "SMS may reach 355 characters once variables are filled in; at most 306 fit in 2 GSM-7")


def test_non_gsm_characters_lower_the_sms_limit(tmp_path):
    file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Обновление: {message}"')))
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update", "at most 134 fit in 2 UCS-2")


def test_long_template_is_fine_without_sms(tmp_path):
    _file, problems = problems_in(tmp_path, variant(
        ("channels: [push, sms]", "channels: [push]"),
        ('"Update: {message}"', '"Update: {message} {message} {school}"')))
    assert problems == []


def test_link_in_a_partner_template(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ('start: "LOCKDOWN at {school}. {reply_hint}"', 'start: "LOCKDOWN at {school}: www.example.org {reply_hint}"'),
    ))
    assert_problem(problems, file, 15, 14, "notifications[0].templates.start", "must not contain links")


def test_link_is_allowed_for_staff(tmp_path):
    _file, problems = problems_in(tmp_path, variant(('"Update: {message}"', '"Update: {message} https://x.org"')))
    assert problems == []


def test_escalation_without_require_ack(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("    require_ack: true\n    escalate_after_seconds: 120\n    priority: 50",
         "    require_ack: false\n    escalate_after_seconds: 120\n    priority: 50"),
    ))
    assert_problem(problems, file, 25, 29, "notifications[1].escalate_after_seconds", "needs require_ack: true")


def test_ack_over_sms_needs_a_reply_hint(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ('"LOCKDOWN at {school} ({time}). {directive} {reply_hint}"', '"LOCKDOWN at {school} ({time})."')))
    assert_problem(problems, file, 22, 14, "notifications[1].templates.start", "must include {reply_hint}")


def test_reminder_not_before_deadline(tmp_path):
    file, problems = problems_in(tmp_path, variant(("  reminder_minutes: 5", "  reminder_minutes: 10")))
    assert_problem(problems, file, 29, 21, "accountability.reminder_minutes",
                   "reminder_minutes (10) must be less than deadline_minutes (10)")


def test_evacuate_without_assembly_points(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("action: lockdown", "action: evacuate"), ("compliance_category: lockdown", "compliance_category: evacuation")))
    assert_problem(problems, file, 32, 5, "accountability.locations.assembly_points",
                   "must name at least one assembly point")


def test_evacuate_with_assembly_points_is_valid(tmp_path):
    _file, problems = problems_in(tmp_path, variant(
        ("action: lockdown", "action: evacuate"),
        ("    rooms: true", "    rooms: false\n    assembly_points: [North field, Parking lot]"),
    ))
    assert problems == []


def test_duplicate_assembly_point(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("    rooms: true", "    assembly_points: [North field, North field]")))
    assert_problem(problems, file, 32, 36, "accountability.locations.assembly_points[1]", "duplicate assembly point")


def test_missing_required_fields(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("name: Test lockdown\n", ""), ("directive: Locks, lights, out of sight.\n", "")))
    assert_problem(problems, file, 1, 1, "name", "required field is missing")
    assert_problem(problems, file, 1, 1, "directive", "required field is missing")
    assert len(problems) == 2


def test_missing_channels_in_a_rule(tmp_path):
    file, problems = problems_in(tmp_path, variant(("    channels: [sms, voice]\n", "")))
    assert_problem(problems, file, 11, 5, "notifications[0].channels", "required field is missing")


def test_missing_start_template(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ('      start: "LOCKDOWN at {school} ({time}). {directive} {reply_hint}"\n', "")))
    assert_problem(problems, file, 22, 7, "notifications[1].templates.start", "required: the start message")


def test_start_template_can_come_from_the_playbook(tmp_path):
    text = variant(('      start: "LOCKDOWN at {school} ({time}). {directive} {reply_hint}"\n', ""))
    text += 'templates:\n  start: "LOCKDOWN at {school}. {reply_hint}"\n'
    file, problems = problems_in(tmp_path, text)
    assert problems == []
    playbook, _ = load_playbook_file(file)
    assert playbook.notifications[1].templates["start"] == "LOCKDOWN at {school}. {reply_hint}"
    assert playbook.notifications[1].templates["update"] == "Update: {message}"
    assert set(playbook.notifications[0].templates) == {"start", "update", "all_clear", "cancel"}


def test_playbook_template_problem_names_the_rule_that_uses_it(tmp_path):
    text = BASE + 'templates:\n  cancel: "Cancelled: {reason} https://example.org/why"\n'
    file, problems = problems_in(tmp_path, text)
    assert problems == [f"{file}:37:11: templates.cancel: messages to partners must not contain links "
                        "(carriers filter them and partners get no app) (used by notifications[0])"]


def test_empty_file(tmp_path):
    file, problems = problems_in(tmp_path, "")
    assert problems == [f"{file}:1:1: the file is empty"]


def test_comment_only_file(tmp_path):
    file, problems = problems_in(tmp_path, "# nothing here yet\n")
    assert problems == [f"{file}:1:1: the file is empty"]


def test_top_level_must_be_a_mapping(tmp_path):
    file, problems = problems_in(tmp_path, "- key: lockdown\n")
    assert problems == [f"{file}:1:1: must be a mapping of fields, got a list"]


def test_bad_key_slug(tmp_path):
    file, problems = problems_in(tmp_path, variant(("key: test_lockdown", "key: Test Lockdown")))
    assert_problem(problems, file, 1, 6, "key", "must be a slug")


def test_srp_key_needs_its_own_action(tmp_path):
    file, problems = problems_in(tmp_path, variant(("key: test_lockdown", "key: hold")))
    assert_problem(problems, file, 3, 9, "action", "the 'hold' playbook must have action 'hold'")


def test_unknown_action_and_compliance_category(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("action: lockdown", "action: lockout"), ("compliance_category: lockdown", "compliance_category: fire")))
    assert_problem(problems, file, 3, 9, "action", "unknown action 'lockout'")
    assert_problem(problems, file, 35, 22, "compliance_category", "unknown compliance category 'fire'")


def test_start_roles_must_cover_every_mode_and_only_those(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("modes: [drill, real]", "modes: [real]"),
        ("  drill: [school_admin]\n", ""),
        ("compliance_category: lockdown\n", ""),
    ) + "variants: {}\n")
    assert problems == []
    file, problems = problems_in(tmp_path, variant(("modes: [drill, real]", "modes: [real]")))
    assert_problem(problems, file, 8, 10, "start_roles.drill", "mode 'drill' is not in this playbook's modes")
    assert_problem(problems, file, 35, 22, "compliance_category", "only drills count for compliance")
    file, problems = problems_in(tmp_path, variant(("  real: [teacher, staff]\n", "")))
    assert_problem(problems, file, 8, 3, "start_roles.real", "say who may start a real run")


def test_rule_modes_must_be_playbook_modes(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("modes: [drill, real]", "modes: [drill]"), ("  real: [teacher, staff]\n", "")))
    assert_problem(problems, file, 11, 13, "notifications[0].modes[0]", "mode 'real' is not in this playbook's modes")


def test_every_mode_needs_a_rule(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("  - audience: [all_staff]\n    channels", "  - audience: [all_staff]\n    modes: [real]\n    channels")))
    assert_problem(problems, file, 11, 3, "notifications", "no notification rule covers drill runs")


def test_unknown_drill_fact(tmp_path):
    file, problems = problems_in(tmp_path, BASE + "drill_facts: [secondary_exit, secundary_exit]\n")
    assert_problem(problems, file, 36, 31, "drill_facts[1]", "unknown drill fact 'secundary_exit'")


def test_variants_are_checked(tmp_path):
    file, problems = problems_in(tmp_path, BASE + "variants:\n  tornado: Drop and cover.\n  Hazmat!: Seal it.\n"
                                 "  quake: ''\n")
    assert_problem(problems, file, 38, 12, "variants.Hazmat!", "must be a lowercase slug")
    assert_problem(problems, file, 39, 10, "variants.quake", "must not be empty")


def test_several_errors_in_one_file_are_all_reported(tmp_path):
    file, problems = problems_in(tmp_path, variant(
        ("action: lockdown", "action: lockout"),
        ("  real: [teacher, staff]", "  real: [teacher, janitor]"),
        ("channels: [push, sms]", "channels: [push, fax]"),
        ('"Update: {message}"', '"Update: {mesage}"'),
        ("  reminder_minutes: 5", "  reminder_minutes: 10"),
    ) + "name: again\n")
    assert_problem(problems, file, 36, 1, "name", "duplicate key")
    assert_problem(problems, file, 3, 9, "action", "unknown action")
    assert_problem(problems, file, 9, 19, "start_roles.real[1]", "unknown role")
    assert_problem(problems, file, 20, 22, "notifications[1].channels[1]", "unknown channel")
    assert_problem(problems, file, 23, 15, "notifications[1].templates.update", "unknown template variable")
    assert_problem(problems, file, 29, 21, "accountability.reminder_minutes", "must be less than")
    assert len(problems) == 6


def test_unreadable_file_is_a_problem(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    playbook, problems = load_playbook_file(path)
    assert playbook is None
    assert str(problems[0]).startswith(f"{path}:1:1: cannot read file")


def test_a_set_used_as_a_key_is_a_problem_not_a_crash(tmp_path):
    file, problems = problems_in(tmp_path, "? !!set {a: null}\n: 1\n")
    assert_problem(problems, file, 1, 3, "", "a key must be a plain value")


def test_parse_playbook_without_a_file_versions_the_data():
    first, problems = parse_playbook(load_text(BASE, "a.yaml"))
    second, _ = parse_playbook(load_text("# a comment\n" + BASE, "a.yaml"))
    assert problems == []
    assert first.version == second.version and len(first.version) == 16


def test_file_version_changes_with_the_bytes(tmp_path):
    (tmp_path / "a.yaml").write_text(BASE)
    (tmp_path / "b.yaml").write_text(BASE + "# edited\n")
    first, _ = load_playbook_file(tmp_path / "a.yaml")
    second, _ = load_playbook_file(tmp_path / "b.yaml")
    assert first.version != second.version


def test_duplicate_playbook_keys_across_files(tmp_path):
    directory = tmp_path / "playbooks"
    shutil.copytree(STANDARD_DIR, directory)
    shutil.copy(directory / "lockdown.yaml", directory / "zz_lockdown_copy.yaml")
    key_line = (directory / "lockdown.yaml").read_text().splitlines().index("key: lockdown") + 1
    playbooks, problems = check_directory(directory)
    assert [str(problem) for problem in problems] == [
        f"{directory / 'zz_lockdown_copy.yaml'}:{key_line}:6: key: duplicate playbook key 'lockdown': "
        f"already defined in {directory / 'lockdown.yaml'}"
    ]
    assert playbooks["lockdown"].source_file == str(directory / "lockdown.yaml")


def test_directory_missing_an_srp_playbook(tmp_path):
    directory = tmp_path / "playbooks"
    shutil.copytree(STANDARD_DIR, directory)
    (directory / "secure.yaml").unlink()
    playbooks, problems = check_directory(directory)
    assert "secure" not in playbooks
    assert [str(problem) for problem in problems] == [
        f"{directory}:1:1: key: no playbook with key 'secure': the five SRP actions "
        "(hold, secure, lockdown, evacuate, shelter) must always be available"
    ]


def test_missing_directory(tmp_path):
    playbooks, problems = check_directory(tmp_path / "nope")
    assert playbooks == {}
    assert [str(problem) for problem in problems] == [f"{tmp_path / 'nope'}:1:1: playbook directory not found"]
