"""What a playbook is once loaded: frozen dataclasses plus the vocabulary the YAML may use.

A run stores `Playbook.to_dict()` when it starts, so an edit made during an emergency never
changes the rules of that emergency; `Playbook.from_dict()` restores the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emergency.directory.roles import PERSON_ROLES

# The five Standard Response Protocol actions come first, in SRP order; the order is used
# wherever playbooks are listed so a principal finds LOCKDOWN in the same place every time.
SRP_ACTIONS = ("hold", "secure", "lockdown", "evacuate", "shelter")
ACTIONS = SRP_ACTIONS + ("medical", "early_dismissal", "reunification", "custom")
MODES = ("drill", "real")
CHANNELS = ("push", "sms", "voice")
AUDIENCES = ("all_staff", "school_admins", "district_admins", "nurses", "security", "partners")
ROLE_AUDIENCE_PREFIX = "role:"  # `role:teacher` addresses everyone holding one person role
OCCASIONS = ("start", "update", "all_clear", "cancel")

# Drill categories the compliance report counts. NY law counts evacuation drills (with the
# subset using secondary egress), lockdown drills and the yearly early-dismissal test; the rest
# are recorded so a district can report them, but no law counts them today.
COMPLIANCE_CATEGORIES = (
    "evacuation",
    "evacuation_secondary",
    "lockdown",
    "shelter",
    "hold",
    "secure",
    "early_dismissal",
    "other",
)

@dataclass(frozen=True)
class ChecklistStep:
    """One step of the printed/phone checklist and the role expected to do it."""

    step: str
    role: str


@dataclass(frozen=True)
class Accountability:
    """Whether classrooms must report, when they are reminded and where they report from."""

    required: bool = False
    reminder_minutes: int = 5
    deadline_minutes: int = 10
    rooms: bool = True
    assembly_points: tuple[str, ...] = ()
    # Real runs only: partners see the names of missing students (student rosters, docs/roster.md).
    partner_missing_names: bool = False


@dataclass(frozen=True)
class NotificationRule:
    """Who is told, in which modes, through which channels, with which words (see templates.render_rule)."""

    audience: tuple[str, ...]
    modes: tuple[str, ...]
    channels: tuple[str, ...]
    templates: dict[str, str]
    require_ack: bool = False
    escalate_after_seconds: int | None = None
    priority: int = 50

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form of the rule."""
        return {
            "audience": list(self.audience),
            "modes": list(self.modes),
            "channels": list(self.channels),
            "templates": dict(self.templates),
            "require_ack": self.require_ack,
            "escalate_after_seconds": self.escalate_after_seconds,
            "priority": self.priority,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NotificationRule:
        """Rebuild a rule from `to_dict()` output."""
        return cls(
            audience=tuple(d["audience"]),
            modes=tuple(d["modes"]),
            channels=tuple(d["channels"]),
            templates=dict(d["templates"]),
            require_ack=bool(d["require_ack"]),
            escalate_after_seconds=d.get("escalate_after_seconds"),
            priority=int(d["priority"]),
        )


@dataclass(frozen=True)
class Playbook:
    """One validated playbook: who may start it, who is told what, and what staff must do."""

    key: str
    name: str
    action: str
    directive: str
    description: str
    modes: tuple[str, ...]
    start_roles: dict[str, tuple[str, ...]]
    confirm_real: bool
    notifications: tuple[NotificationRule, ...]
    accountability: Accountability
    checklist: tuple[ChecklistStep, ...]
    compliance_category: str | None
    drill_facts: tuple[str, ...]
    variants: dict[str, str] = field(default_factory=dict)
    version: str = ""
    source_file: str = ""

    def can_start(self, role: str, mode: str) -> bool:
        """Whether a person holding `role` may start this playbook in `mode`."""
        return mode in self.modes and role in self.start_roles.get(mode, ())

    def rules_for(self, mode: str) -> list[NotificationRule]:
        """The notification rules that apply in `mode`, soonest priority first."""
        return sorted((rule for rule in self.notifications if mode in rule.modes), key=lambda r: r.priority)

    def directive_for(self, variant: str | None = None) -> str:
        """The directive of `variant` (e.g. "tornado"), or the playbook's own."""
        if variant:
            return self.variants.get(variant, self.directive)
        return self.directive

    def base_variables(self, variant: str | None = None) -> dict[str, str]:
        """The template variables the playbook itself supplies: `action` and `directive`."""
        return {"action": self.name, "directive": self.directive_for(variant)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable full definition, version included."""
        return {
            "key": self.key,
            "name": self.name,
            "action": self.action,
            "directive": self.directive,
            "description": self.description,
            "modes": list(self.modes),
            "start_roles": {mode: list(roles) for mode, roles in self.start_roles.items()},
            "confirm_real": self.confirm_real,
            "notifications": [rule.to_dict() for rule in self.notifications],
            "accountability": {
                "required": self.accountability.required,
                "reminder_minutes": self.accountability.reminder_minutes,
                "deadline_minutes": self.accountability.deadline_minutes,
                "rooms": self.accountability.rooms,
                "assembly_points": list(self.accountability.assembly_points),
                "partner_missing_names": self.accountability.partner_missing_names,
            },
            "checklist": [{"step": step.step, "role": step.role} for step in self.checklist],
            "compliance_category": self.compliance_category,
            "drill_facts": list(self.drill_facts),
            "variants": dict(self.variants),
            "version": self.version,
            "source_file": self.source_file,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Playbook:
        """Rebuild a playbook from `to_dict()` output (the snapshot a run stored)."""
        account = d["accountability"]
        return cls(
            key=d["key"],
            name=d["name"],
            action=d["action"],
            directive=d["directive"],
            description=d["description"],
            modes=tuple(d["modes"]),
            start_roles={mode: tuple(roles) for mode, roles in d["start_roles"].items()},
            confirm_real=bool(d["confirm_real"]),
            notifications=tuple(NotificationRule.from_dict(rule) for rule in d["notifications"]),
            accountability=Accountability(
                required=bool(account["required"]),
                reminder_minutes=int(account["reminder_minutes"]),
                deadline_minutes=int(account["deadline_minutes"]),
                rooms=bool(account["rooms"]),
                assembly_points=tuple(account["assembly_points"]),
                partner_missing_names=bool(account.get("partner_missing_names", False)),
            ),
            checklist=tuple(ChecklistStep(step["step"], step["role"]) for step in d["checklist"]),
            compliance_category=d.get("compliance_category"),
            drill_facts=tuple(d.get("drill_facts", ())),
            variants=dict(d.get("variants", {})),
            version=d.get("version", ""),
            source_file=d.get("source_file", ""),
        )


def display_order(playbook: Playbook) -> tuple:
    """Sort key: the five SRP actions in SRP order, then everything else by name."""
    rank = SRP_ACTIONS.index(playbook.action) if playbook.action in SRP_ACTIONS else len(SRP_ACTIONS)
    # Within one SRP action, the playbook whose key is the action itself (`shelter`) leads.
    return (rank, playbook.key != playbook.action, playbook.name.casefold(), playbook.key)


def audience_is_valid(audience: str) -> bool:
    """Whether `audience` is a known group or `role:<person role>`."""
    if audience in AUDIENCES:
        return True
    return audience.startswith(ROLE_AUDIENCE_PREFIX) and audience[len(ROLE_AUDIENCE_PREFIX):] in PERSON_ROLES
