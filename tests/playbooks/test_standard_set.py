"""The playbooks shipped in playbooks/ are valid and say what the SRP and the brief require."""

from __future__ import annotations

import json

from emergency.directory.roles import ADMIN_ROLES, PERSON_ROLES
from emergency.playbooks.loader import check_directory, sorted_playbooks
from emergency.playbooks.model import SRP_ACTIONS, Playbook
from tests.playbooks.helpers import STANDARD_DIR


def standard() -> dict[str, Playbook]:
    playbooks, problems = check_directory(STANDARD_DIR)
    assert [str(problem) for problem in problems] == []
    return playbooks


def test_shipped_playbooks_have_no_problems():
    assert set(standard()) == {
        "hold", "secure", "lockdown", "evacuate", "shelter", "medical", "early_dismissal", "reunification",
    }


def test_srp_directives_are_word_for_word():
    playbooks = standard()
    assert playbooks["hold"].directive == "In your room or area. Clear the halls."
    assert playbooks["secure"].directive == "Get inside. Lock outside doors."
    assert playbooks["lockdown"].directive == "Locks, lights, out of sight."
    assert set(playbooks["shelter"].variants) == {"tornado", "hazmat", "earthquake"}


def test_any_staff_member_can_start_a_real_srp_action_and_only_admins_drill():
    playbooks = standard()
    for key in SRP_ACTIONS:
        assert all(playbooks[key].can_start(role, "real") for role in PERSON_ROLES), key
        assert set(playbooks[key].start_roles["drill"]) == set(ADMIN_ROLES), key
        assert not playbooks[key].can_start("teacher", "drill")
        assert not playbooks[key].can_start("partner", "real")
        assert playbooks[key].confirm_real


def test_partners_are_told_of_real_runs_except_hold():
    playbooks = standard()
    for key in ("secure", "lockdown", "evacuate", "shelter", "medical"):
        assert any("partners" in rule.audience for rule in playbooks[key].rules_for("real")), key
        assert not any("partners" in rule.audience for rule in playbooks[key].rules_for("drill")), key
    for key in ("hold", "early_dismissal", "reunification"):
        assert not any("partners" in rule.audience for rule in playbooks[key].notifications), key


def test_staff_must_acknowledge_the_urgent_actions_with_escalation():
    playbooks = standard()
    for key in ("secure", "lockdown", "evacuate", "shelter"):
        staff = [rule for rule in playbooks[key].notifications if "all_staff" in rule.audience]
        assert staff and all(rule.require_ack and rule.escalate_after_seconds for rule in staff), key


def test_partners_and_admins_are_told_before_staff():
    for playbook in standard().values():
        rules = playbook.rules_for("real") if "real" in playbook.modes else playbook.rules_for("drill")
        staff = min(rule.priority for rule in rules if "all_staff" in rule.audience) if any(
            "all_staff" in rule.audience for rule in rules) else 100
        for rule in rules:
            if "partners" in rule.audience or "school_admins" in rule.audience:
                assert rule.priority < staff, playbook.key


def test_medical_alerts_only_responders_and_needs_no_check_in():
    medical = standard()["medical"]
    audiences = {audience for rule in medical.notifications for audience in rule.audience}
    assert audiences == {"nurses", "school_admins", "security", "partners"}
    assert medical.accountability.required is False


def test_early_dismissal_is_a_drill_recording_parent_notice():
    early = standard()["early_dismissal"]
    assert early.modes == ("drill",)
    assert "parents_notified_on" in early.drill_facts
    assert early.compliance_category == "early_dismissal"


def test_evacuate_reports_from_assembly_points():
    evacuate = standard()["evacuate"]
    assert evacuate.accountability.assembly_points
    assert evacuate.compliance_category == "evacuation"
    assert "secondary_exit" in evacuate.drill_facts


def test_order_is_srp_first_then_by_name():
    keys = [playbook.key for playbook in sorted_playbooks(standard().values())]
    assert keys == ["hold", "secure", "lockdown", "evacuate", "shelter", "early_dismissal", "medical",
                    "reunification"]


def test_to_dict_is_json_and_round_trips():
    for playbook in standard().values():
        data = playbook.to_dict()
        restored = Playbook.from_dict(json.loads(json.dumps(data)))
        assert restored == playbook
        assert restored.to_dict() == data
        assert data["version"] == playbook.version and len(playbook.version) == 16


def test_rules_for_is_sorted_by_priority():
    for playbook in standard().values():
        for mode in playbook.modes:
            priorities = [rule.priority for rule in playbook.rules_for(mode)]
            assert priorities == sorted(priorities)
