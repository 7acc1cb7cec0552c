"""Messages render without failing; drills always carry the banner, real messages never do."""

from __future__ import annotations

import re

import pytest

from emergency.playbooks.loader import check_directory
from emergency.playbooks.model import OCCASIONS
from emergency.playbooks.templates import DRILL_BANNER, TEMPLATE_VARIABLES, render, render_rule
from tests.playbooks.helpers import STANDARD_DIR

VARIABLES = {
    "school": "Lincoln Middle School",
    "time": "10:42 AM",
    "initiator": "Ms. Rivera (teacher)",
    "location": "Room 214",
    "reply_hint": "Reply 1 if you got this.",
    "message": "Police are on site.",
    "reason": "Started by mistake.",
}


def test_drill_message_starts_with_the_banner():
    assert render("LOCKDOWN at {school}.", VARIABLES, "drill") == f"{DRILL_BANNER} LOCKDOWN at Lincoln Middle School."


def test_real_message_has_no_banner():
    assert render("LOCKDOWN at {school}.", VARIABLES, "real") == "LOCKDOWN at Lincoln Middle School."


@pytest.mark.parametrize("message", [
    "THIS IS A DRILL",
    "this is a drill. Police on site",
    "DRILL - THIS IS A DRILL. Police on site",
    "Police on site. This   is a\ndrill!",
    "THIS IS A THIS IS A DRILL DRILL",
])
def test_real_update_never_carries_drill_wording(message):
    text = render("UPDATE at {school}: {message}", {**VARIABLES, "message": message}, "real")
    assert "this is a drill" not in " ".join(text.casefold().split())
    assert DRILL_BANNER.casefold() not in text.casefold()
    assert text.startswith("UPDATE at Lincoln Middle School")


def test_real_message_cannot_start_like_a_drill():
    text = render("{message}", {**VARIABLES, "message": "DRILL: police on site"}, "real")
    assert text == "police on site"


def test_drill_update_keeps_the_users_words_after_the_banner():
    text = render("UPDATE: {message}", {**VARIABLES, "message": "THIS IS A DRILL"}, "drill")
    assert text == f"{DRILL_BANNER} UPDATE: THIS IS A DRILL"


def test_missing_and_unknown_variables_render_empty():
    assert render("At {school}: {location} {nonsense}!", {"school": "Lincoln"}, "real") == "At Lincoln!"


def test_bad_brace_syntax_never_raises():
    assert render("At {school", VARIABLES, "real") == "At {school"
    assert render("{{school}} {{{school}}}", VARIABLES, "real") == "{school} {Lincoln Middle School}"


def test_long_values_are_cut_to_their_documented_maximum():
    text = render("{message}", {"message": "x" * 500}, "real")
    assert len(text) == TEMPLATE_VARIABLES["message"]
    assert text.endswith("...")


def test_values_of_any_type_render():
    assert render("{time} {school}", {"time": 1042, "school": None}, "real") == "1042"


def test_unknown_mode_is_a_programming_error():
    with pytest.raises(ValueError):
        render("x", {}, "practice")


def test_every_standard_message_renders_in_both_modes():
    playbooks, problems = check_directory(STANDARD_DIR)
    assert problems == []
    for playbook in playbooks.values():
        for variant in [None, *playbook.variants]:
            variables = {**VARIABLES, **playbook.base_variables(variant)}
            for mode in playbook.modes:
                for rule in playbook.rules_for(mode):
                    for occasion in OCCASIONS:
                        text = render_rule(rule, occasion, mode, variables)
                        assert text.startswith(DRILL_BANNER) == (mode == "drill")
                        assert "{" not in text
                        if "partners" in rule.audience:
                            assert "http" not in text


def test_rule_render_rejects_unknown_occasion():
    playbooks, _ = check_directory(STANDARD_DIR)
    with pytest.raises(ValueError):
        render_rule(playbooks["lockdown"].notifications[0], "reminder", "real", VARIABLES)


def test_shelter_variant_directive_reaches_the_message():
    playbooks, _ = check_directory(STANDARD_DIR)
    shelter = playbooks["shelter"]
    staff = [rule for rule in shelter.rules_for("real") if "all_staff" in rule.audience][0]
    text = render_rule(staff, "start", "real", {**VARIABLES, **shelter.base_variables("hazmat")})
    assert shelter.variants["hazmat"] in text


def test_a_sentence_that_only_labels_an_empty_variable_is_left_out():
    template = "LOCKDOWN at {school}, started {time} by {initiator}. Reported location: {location}. {reply_hint}"
    text = render(template, {**VARIABLES, "location": ""}, "real")
    assert text == ("LOCKDOWN at Lincoln Middle School, started 10:42 AM by Ms. Rivera (teacher). "
                    "Reply 1 if you got this.")
    assert "location" not in text.casefold()


def test_an_empty_variable_inside_a_sentence_takes_its_joining_word_with_it():
    template = ("REUNIFICATION for {school} at {location}, started {time}. "
                "MEDICAL at {school}: {location} ({time}, {initiator}).")
    text = render(template, {**VARIABLES, "location": None, "initiator": ""}, "real")
    assert text == ("REUNIFICATION for Lincoln Middle School, started 10:42 AM. "
                    "MEDICAL at Lincoln Middle School (10:42 AM).")


def test_line_breaks_survive_and_an_empty_trailing_message_leaves_no_gap():
    text = render("At {school}\nWhere: {location}\nBye. {message}", {"school": "A"}, "drill")
    assert text == f"{DRILL_BANNER} At A\nBye."


def test_no_standard_message_prints_an_empty_field():
    playbooks, _ = check_directory(STANDARD_DIR)
    bare = {**VARIABLES, "location": "", "reply_hint": "", "message": "", "reason": ""}
    for playbook in playbooks.values():
        for mode in playbook.modes:
            for rule in playbook.rules_for(mode):
                for occasion in OCCASIONS:
                    text = render_rule(rule, occasion, mode, {**bare, **playbook.base_variables(None)})
                    assert not re.search(r"[:,]\s*[.,)]|\(\s*\)|:\s*$", text), (playbook.key, occasion, text)
