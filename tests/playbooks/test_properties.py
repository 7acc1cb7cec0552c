"""Whatever a district types, loading returns problems; it never raises."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emergency.playbooks.loader import parse_playbook
from emergency.playbooks.model import MODES
from emergency.playbooks.templates import TEMPLATE_VARIABLES, render
from emergency.yamlfile import load_text
from tests.playbooks.helpers import BASE

FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

FIELD_NAMES = st.sampled_from([
    "key", "name", "action", "modes", "start_roles", "notifications", "audience", "channels", "templates",
    "start", "require_ack", "escalate_after_seconds", "priority", "accountability", "locations",
    "assembly_points", "checklist", "step", "role", "variants", "drill_facts", "compliance_category",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["lockdown", "drill", "real", "sms", "push", "teacher", "partners", "{school}", "{x", "}"]),
)
STRUCTURES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(FIELD_NAMES, st.text(max_size=10), st.integers()), children, max_size=5),
    ),
    max_leaves=25,
)
BASE_DATA = yaml.safe_load(BASE)


def parse(text: str) -> None:
    loaded = load_text(text, "fuzz.yaml")
    playbook, problems = parse_playbook(loaded)
    assert (playbook is None) == bool(problems)
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1
        str(problem)


@FAST
@given(st.text(max_size=300))
def test_random_text_never_raises(text):
    parse(text)


@FAST
@given(STRUCTURES)
def test_random_structures_never_raise(data):
    parse(yaml.safe_dump(data, allow_unicode=True))


@FAST
@given(st.data())
def test_mutated_valid_playbook_never_raises(data):
    # Start from a valid playbook and replace values deep inside it, where the checks are.
    playbook = yaml.safe_load(BASE)
    node = playbook
    for _ in range(data.draw(st.integers(0, 3))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node, key=str)))
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(0, len(node) - 1))
        else:
            break
        if not isinstance(node[key], (dict, list)):
            break
        node = node[key]
    if isinstance(node, dict):
        node[data.draw(st.one_of(st.sampled_from(sorted(node, key=str)), FIELD_NAMES))] = data.draw(STRUCTURES)
    elif isinstance(node, list) and node:
        node[data.draw(st.integers(0, len(node) - 1))] = data.draw(STRUCTURES)
    parse(yaml.safe_dump(playbook, allow_unicode=True))


@FAST
@given(st.text(max_size=200), st.dictionaries(st.sampled_from(sorted(TEMPLATE_VARIABLES)), st.text(max_size=200)),
       st.sampled_from(MODES))
def test_render_never_raises_and_real_never_looks_like_a_drill(template, variables, mode):
    text = render(template, variables, mode)
    if mode == "real":
        assert "this is a drill" not in " ".join(text.casefold().split())
    else:
        assert text.startswith("DRILL - THIS IS A DRILL.")


def test_base_is_still_valid():
    assert parse_playbook(load_text(yaml.safe_dump(BASE_DATA)))[1] == []
