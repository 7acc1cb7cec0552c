"""Read playbook YAML and report every mistake with its file, line and column.

Validation is strict because a typo found during a real lockdown is a typo found too late:
unknown fields, wrong types, unknown template variables and messages too long for two SMS
segments are all errors. Every check runs even after an earlier one failed, so one
`emergency playbooks check` shows everything that needs fixing.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from emergency.checking import Checker, Path_, Problem, dotted, one_of, shown
from emergency.directory.roles import PERSON_ROLES
from emergency.playbooks.drill_facts import DRILL_FACTS
from emergency.playbooks.model import (
    ACTIONS,
    AUDIENCES,
    CHANNELS,
    COMPLIANCE_CATEGORIES,
    MODES,
    OCCASIONS,
    ROLE_AUDIENCE_PREFIX,
    SRP_ACTIONS,
    Accountability,
    ChecklistStep,
    NotificationRule,
    Playbook,
    audience_is_valid,
    display_order,
)
from emergency.playbooks.templates import (
    DEFAULT_TEMPLATES,
    DRILL_BANNER,
    SMS_LIMIT_GSM,
    TEMPLATE_VARIABLES,
    has_drill_wording,
    sms_length,
    template_variables,
)
from emergency.yamlfile import LoadedYaml, load_text

KEY_PATTERN = re.compile(r"[a-z][a-z0-9_-]*\Z")
MAX_KEY_LENGTH = 40
MAX_NAME_LENGTH = TEMPLATE_VARIABLES["action"]
MAX_DIRECTIVE_LENGTH = TEMPLATE_VARIABLES["directive"]
MAX_DESCRIPTION_LENGTH = 2000
MAX_STEP_LENGTH = 200
MAX_ASSEMBLY_POINT_LENGTH = TEMPLATE_VARIABLES["location"]
MAX_TEMPLATE_LENGTH = 1000  # push and voice are not limited like SMS, but nobody reads an essay

PRIORITY_RANGE = (0, 100)
ESCALATION_RANGE = (30, 3600)  # under 30 s people have not had time to read the push
REMINDER_RANGE = (1, 120)
DEADLINE_RANGE = (1, 240)

DEFAULT_PRIORITY = 50
DEFAULT_REMINDER_MINUTES = 5
DEFAULT_DEADLINE_MINUTES = 10

_LINK = re.compile(r"https?://|www\.", re.IGNORECASE)

TOP_FIELDS = (
    "key", "name", "action", "directive", "description", "modes", "start_roles", "confirm_real",
    "templates", "notifications", "accountability", "checklist", "compliance_category",
    "drill_facts", "variants",
)
TOP_REQUIRED = ("key", "name", "action", "directive", "description", "modes", "start_roles", "notifications")
RULE_FIELDS = (
    "audience", "modes", "channels", "templates", "require_ack", "escalate_after_seconds", "priority",
)
RULE_REQUIRED = ("audience", "channels")
ACCOUNTABILITY_FIELDS = ("required", "reminder_minutes", "deadline_minutes", "locations", "partner_missing_names")
LOCATION_FIELDS = ("rooms", "assembly_points")
STEP_FIELDS = ("step", "role")


# --------------------------------------------------------------------------- the validator


class _Checker(Checker):
    """Walks one loaded file, collecting problems and building the playbook."""

    def __init__(self, loaded: LoadedYaml) -> None:
        super().__init__(lambda path, message: self.problems.append(loaded.problem(path, message)))
        self.loaded = loaded
        self.problems: list[Problem] = list(loaded.problems)
        self.reported: set[tuple[Path_, str]] = set()

    def first_report(self, path: Path_, kind: str) -> bool:
        """False when a playbook-wide template was already blamed for `kind` by an earlier rule."""
        if (path, kind) in self.reported:
            return False
        self.reported.add((path, kind))
        return True

    # ---- the playbook

    def playbook(self, version: str) -> Playbook | None:
        data = self.loaded.data
        if data is None and self.loaded.problems:
            return None  # empty file or YAML syntax error: already reported
        top = self.mapping((), data, TOP_FIELDS, TOP_REQUIRED)
        if top is None:
            return None

        key = self.key(top)
        name = self.text(("name",), top["name"], MAX_NAME_LENGTH) if "name" in top else None
        action = self.choice(("action",), top["action"], ACTIONS, "action") if "action" in top else None
        if key in SRP_ACTIONS and action is not None and action != key:
            self.error(("action",), f"the '{key}' playbook must have action '{key}', got '{action}'")
        directive = (self.text(("directive",), top["directive"], MAX_DIRECTIVE_LENGTH)
                     if "directive" in top else None)
        description = (self.text(("description",), top["description"], MAX_DESCRIPTION_LENGTH,
                                 allow_empty=True)
                       if "description" in top else None)
        modes = self.choice_list(("modes",), top["modes"], MODES, "mode") if "modes" in top else None
        start_roles = self.start_roles(top.get("start_roles"), modes) if "start_roles" in top else None
        confirm_real = self.boolean(("confirm_real",), top["confirm_real"]) if "confirm_real" in top else True
        variants = self.variants(top["variants"]) if "variants" in top else {}
        defaults = self.templates(("templates",), top["templates"]) if "templates" in top else {}
        notifications = (self.notifications(top["notifications"], modes, defaults, name, directive, variants)
                         if "notifications" in top else None)
        accountability = (self.accountability(top["accountability"], action)
                          if "accountability" in top else Accountability())
        if "accountability" not in top and action == "evacuate":
            self.error(("accountability",),
                       "an evacuate playbook needs accountability.locations.assembly_points")
            accountability = None
        checklist = self.checklist(top["checklist"]) if "checklist" in top else ()
        category = self.compliance_category(top, modes)
        facts = self.drill_facts(top, modes)

        if len(self.problems) or None in (key, name, action, directive, description, modes, start_roles,
                                          confirm_real, variants, notifications, accountability, checklist,
                                          facts):
            return None
        return Playbook(
            key=key, name=name, action=action, directive=directive, description=description, modes=modes,
            start_roles=start_roles, confirm_real=confirm_real, notifications=notifications,
            accountability=accountability, checklist=checklist, compliance_category=category,
            drill_facts=facts, variants=variants, version=version, source_file=self.loaded.file,
        )

    def key(self, top: dict) -> str | None:
        if "key" not in top:
            return None
        value = top["key"]
        if not isinstance(value, str) or not KEY_PATTERN.match(value) or len(value) > MAX_KEY_LENGTH:
            self.error(("key",), f"must be a slug of lowercase letters, digits, '_' or '-' starting with a "
                                 f"letter, at most {MAX_KEY_LENGTH} characters; got {shown(value)}")
            return None
        return value

    def start_roles(self, value: Any, modes: tuple[str, ...] | None) -> dict[str, tuple[str, ...]] | None:
        path: Path_ = ("start_roles",)
        if not isinstance(value, dict):
            self.wrong(path, "a mapping of each mode to a list of roles", value)
            return None
        result: dict[str, tuple[str, ...]] = {}
        ok = True
        for mode, roles in value.items():
            if mode not in MODES:
                self.error(path + (mode,), f"unknown mode {shown(mode)} {one_of(MODES)}")
                ok = False
                continue
            if modes is not None and mode not in modes:
                self.error(path + (mode,), f"mode '{mode}' is not in this playbook's modes")
                ok = False
                continue
            checked = self.choice_list(path + (mode,), roles, PERSON_ROLES, "role")
            if checked is None:
                ok = False
            else:
                result[mode] = checked
        for mode in modes or ():
            if mode not in value:
                self.error(path + (mode,), f"say who may start a {mode} run")
                ok = False
        if not ok:
            return None
        # Keep the order of MODES so two equal playbooks compare and serialise equal.
        return {mode: result[mode] for mode in MODES if mode in result}

    def variants(self, value: Any) -> dict[str, str] | None:
        path: Path_ = ("variants",)
        if not isinstance(value, dict):
            self.wrong(path, "a mapping of each hazard to its directive", value)
            return None
        result: dict[str, str] = {}
        ok = True
        for hazard, directive in value.items():
            if not isinstance(hazard, str) or not KEY_PATTERN.match(hazard):
                self.error(path + (hazard,), f"hazard '{hazard}' must be a lowercase slug such as tornado")
                ok = False
                continue
            checked = self.text(path + (hazard,), directive, MAX_DIRECTIVE_LENGTH)
            if checked is None:
                ok = False
            else:
                result[hazard] = checked
        return result if ok else None

    def templates(self, path: Path_, value: Any) -> dict[str, tuple[str, Path_]] | None:
        """Occasion -> (template, where it was written); each template checked on its own."""
        if not isinstance(value, dict):
            self.wrong(path, f"a mapping of occasions ({', '.join(OCCASIONS)}) to message templates", value)
            return None
        result: dict[str, tuple[str, Path_]] = {}
        ok = True
        for occasion, template in value.items():
            where = path + (occasion,)
            if occasion not in OCCASIONS:
                self.error(where, f"unknown occasion {shown(occasion)} {one_of(OCCASIONS)}")
                ok = False
                continue
            checked = self.template(where, template)
            if checked is None:
                ok = False
            else:
                result[occasion] = (checked, where)
        return result if ok else None

    def template(self, path: Path_, value: Any) -> str | None:
        text = self.text(path, value, MAX_TEMPLATE_LENGTH)
        if text is None:
            return None
        ok = True
        names, syntax_error = template_variables(text)
        if syntax_error:
            self.error(path, syntax_error)
            ok = False
        for name in names:
            if name not in TEMPLATE_VARIABLES:
                close = difflib.get_close_matches(name, TEMPLATE_VARIABLES, n=1)
                hint = f" (did you mean {{{close[0]}}}?)" if close else ""
                self.error(path, f"unknown template variable {{{name}}}{hint}; known: "
                                 + ", ".join(f"{{{known}}}" for known in TEMPLATE_VARIABLES))
                ok = False
        if has_drill_wording(text):
            self.error(path, f"must not contain drill wording: drill messages get '{DRILL_BANNER}' "
                             "automatically, and real messages must never look like a drill")
            ok = False
        return text if ok else None

    def notifications(self, value: Any, modes: tuple[str, ...] | None,
                      defaults: dict[str, tuple[str, Path_]] | None, name: str | None,
                      directive: str | None, variants: dict[str, str] | None
                      ) -> tuple[NotificationRule, ...] | None:
        path: Path_ = ("notifications",)
        if not isinstance(value, list):
            self.wrong(path, "a list of notification rules", value)
            return None
        if not value:
            self.error(path, "must list at least one notification rule")
            return None
        # The SMS check uses the real length of what the playbook itself fills in.
        fixed = {"action": len(name or "") or TEMPLATE_VARIABLES["action"]}
        directives = [directive or ""] + list((variants or {}).values())
        fixed["directive"] = max(len(text) for text in directives) or TEMPLATE_VARIABLES["directive"]
        rules: list[NotificationRule] = []
        ok = True
        for index, item in enumerate(value):
            rule = self.rule(path + (index,), item, modes, defaults, fixed)
            if rule is None:
                ok = False
            else:
                rules.append(rule)
        if not ok:
            return None
        for mode in modes or ():
            if not any(mode in rule.modes for rule in rules):
                self.error(path, f"no notification rule covers {mode} runs: nobody would be told")
                ok = False
        return tuple(rules) if ok else None

    def rule(self, path: Path_, value: Any, modes: tuple[str, ...] | None,
             defaults: dict[str, tuple[str, Path_]] | None, fixed: dict[str, int]) -> NotificationRule | None:
        item = self.mapping(path, value, RULE_FIELDS, RULE_REQUIRED)
        if item is None:
            return None
        audience = (self.choice_list(path + ("audience",), item["audience"],
                                     AUDIENCES + (f"{ROLE_AUDIENCE_PREFIX}<person role>",), "audience",
                                     valid=audience_is_valid)
                    if "audience" in item else None)
        rule_modes: tuple[str, ...] | None = modes
        if "modes" in item:
            rule_modes = self.choice_list(path + ("modes",), item["modes"], MODES, "mode")
            if rule_modes is not None and modes is not None:
                for index, mode in enumerate(rule_modes):
                    if mode not in modes:
                        self.error(path + ("modes", index), f"mode '{mode}' is not in this playbook's modes")
                        rule_modes = None
                        break
        channels = (self.choice_list(path + ("channels",), item["channels"], CHANNELS, "channel")
                    if "channels" in item else None)
        require_ack = (self.boolean(path + ("require_ack",), item["require_ack"])
                       if "require_ack" in item else False)
        escalate = None
        if item.get("escalate_after_seconds") is not None:
            escalate = self.integer(path + ("escalate_after_seconds",), item["escalate_after_seconds"],
                                    *ESCALATION_RANGE)
            if require_ack is False:
                self.error(path + ("escalate_after_seconds",),
                           "escalation needs require_ack: true (only an unacknowledged alert escalates "
                           "to a voice call)")
                escalate = None
                require_ack = None
        priority = (self.integer(path + ("priority",), item["priority"], *PRIORITY_RANGE)
                    if "priority" in item else DEFAULT_PRIORITY)

        own = self.templates(path + ("templates",), item["templates"]) if "templates" in item else {}
        templates = self.resolve_templates(path, own, defaults)
        if templates is not None and audience is not None and channels is not None and rule_modes is not None:
            templates = self.check_delivery(path, templates, audience, channels, rule_modes, require_ack,
                                            fixed)

        if None in (audience, rule_modes, channels, require_ack, priority, templates):
            return None
        return NotificationRule(
            audience=audience, modes=rule_modes, channels=channels,
            templates={occasion: text for occasion, (text, _where) in templates.items()},
            require_ack=require_ack, escalate_after_seconds=escalate, priority=priority,
        )

    def resolve_templates(self, path: Path_, own: dict | None, defaults: dict | None
                          ) -> dict[str, tuple[str, Path_ | None]] | None:
        if own is None or defaults is None:
            return None
        resolved: dict[str, tuple[str, Path_ | None]] = {}
        for occasion in OCCASIONS:
            if occasion in own:
                resolved[occasion] = own[occasion]
            elif occasion in defaults:
                resolved[occasion] = defaults[occasion]
            elif occasion in DEFAULT_TEMPLATES:
                resolved[occasion] = (DEFAULT_TEMPLATES[occasion], None)
        if "start" not in resolved:
            self.error(path + ("templates", "start"),
                       "required: the start message (here or in the playbook's templates.start)")
            return None
        return resolved

    def check_delivery(self, path: Path_, templates: dict[str, tuple[str, Path_ | None]],
                       audience: tuple[str, ...], channels: tuple[str, ...], modes: tuple[str, ...],
                       require_ack: bool | None, fixed: dict[str, int]) -> dict | None:
        """Checks that depend on who receives a template and how: links, SMS length, reply hint."""
        ok = True
        for text, written in templates.values():
            note = _used_by(written, path)
            where = written or path
            if "partners" in audience and _LINK.search(text):
                ok = False
                if self.first_report(where, "link"):
                    self.error(where, "messages to partners must not contain links (carriers filter them "
                                      f"and partners get no app){note}")
            if "sms" in channels:
                length, limit = sms_length(text, modes, fixed)
                if length > limit:
                    ok = False
                    encoding = "GSM-7" if limit == SMS_LIMIT_GSM else "UCS-2 (non-GSM characters)"
                    if self.first_report(where, "sms"):
                        self.error(where, f"SMS may reach {length} characters once variables are filled in; "
                                          f"at most {limit} fit in 2 {encoding} segments{note}")
        start, start_where = templates["start"]
        if require_ack and "sms" in channels and "reply_hint" not in template_variables(start)[0]:
            ok = False
            if self.first_report(start_where or path, "reply_hint"):
                self.error(start_where or path, "an SMS that needs acknowledgement must include {reply_hint} "
                                                f"so people know how to answer{_used_by(start_where, path)}")
        return templates if ok else None

    def accountability(self, value: Any, action: str | None) -> Accountability | None:
        path: Path_ = ("accountability",)
        item = self.mapping(path, value, ACCOUNTABILITY_FIELDS)
        if item is None:
            return None
        required = self.boolean(path + ("required",), item["required"]) if "required" in item else False
        reminder = (self.integer(path + ("reminder_minutes",), item["reminder_minutes"], *REMINDER_RANGE)
                    if "reminder_minutes" in item else DEFAULT_REMINDER_MINUTES)
        deadline = (self.integer(path + ("deadline_minutes",), item["deadline_minutes"], *DEADLINE_RANGE)
                    if "deadline_minutes" in item else DEFAULT_DEADLINE_MINUTES)
        if reminder is not None and deadline is not None and reminder >= deadline:
            blame = "reminder_minutes" if "reminder_minutes" in item else "deadline_minutes"
            self.error(path + (blame,), f"reminder_minutes ({reminder}) must be less than "
                                        f"deadline_minutes ({deadline})")
            reminder = None
        partner_names = (self.boolean(path + ("partner_missing_names",), item["partner_missing_names"])
                         if "partner_missing_names" in item else False)
        rooms: bool | None = True
        points: tuple[str, ...] | None = ()
        if "locations" in item:
            locations = self.mapping(path + ("locations",), item["locations"], LOCATION_FIELDS)
            if locations is None:
                rooms = points = None
            else:
                if "rooms" in locations:
                    rooms = self.boolean(path + ("locations", "rooms"), locations["rooms"])
                if "assembly_points" in locations:
                    points = self.assembly_points(path + ("locations", "assembly_points"),
                                                  locations["assembly_points"])
        if action == "evacuate" and points == ():
            self.error(path + ("locations", "assembly_points"),
                       "an evacuate playbook must name at least one assembly point")
            points = None
        if required and rooms is False and points == ():
            self.error(path + ("locations",), "accountability is required but no location is allowed: "
                                              "set rooms: true or list assembly_points")
            rooms = None
        if None in (required, reminder, deadline, rooms, points, partner_names):
            return None
        return Accountability(required=required, reminder_minutes=reminder, deadline_minutes=deadline,
                              rooms=rooms, assembly_points=points, partner_missing_names=partner_names)

    def assembly_points(self, path: Path_, value: Any) -> tuple[str, ...] | None:
        return self.unique_list(path, value, lambda where, item: self.text(where, item, MAX_ASSEMBLY_POINT_LENGTH),
                                "assembly point", expected="a list of assembly point names", allow_empty=True)

    def checklist(self, value: Any) -> tuple[ChecklistStep, ...] | None:
        path: Path_ = ("checklist",)
        if not isinstance(value, list):
            self.wrong(path, "a list of steps", value)
            return None
        steps: list[ChecklistStep] = []
        ok = True
        for index, item in enumerate(value):
            where = path + (index,)
            entry = self.mapping(where, item, STEP_FIELDS, STEP_FIELDS)
            if entry is None:
                ok = False
                continue
            step = self.text(where + ("step",), entry["step"], MAX_STEP_LENGTH) if "step" in entry else None
            role = (self.choice(where + ("role",), entry["role"], PERSON_ROLES, "role")
                    if "role" in entry else None)
            if step is None or role is None:
                ok = False
            else:
                steps.append(ChecklistStep(step, role))
        return tuple(steps) if ok else None

    def compliance_category(self, top: dict, modes: tuple[str, ...] | None) -> str | None:
        value = top.get("compliance_category")
        if value is None:
            return None
        category = self.choice(("compliance_category",), value, COMPLIANCE_CATEGORIES, "compliance category")
        if category is not None and modes is not None and "drill" not in modes:
            self.error(("compliance_category",), "only drills count for compliance; add drill to modes "
                                                 "or remove compliance_category")
        return category

    def drill_facts(self, top: dict, modes: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if "drill_facts" not in top or top["drill_facts"] is None:
            return ()
        facts = self.choice_list(("drill_facts",), top["drill_facts"], DRILL_FACTS, "drill fact",
                                 allow_empty=True)
        if facts and modes is not None and "drill" not in modes:
            self.error(("drill_facts",), "drill facts need drill in modes")
        return facts


def _used_by(where: Path_ | None, path: Path_) -> str:
    # A playbook-level template is blamed at its own line; name the rule that needed it.
    if where is not None and where[0] == "templates":
        return f" (used by {dotted(path)})"
    return ""


# --------------------------------------------------------------------------- entry points


def parse_playbook(loaded: LoadedYaml, version: str | None = None) -> tuple[Playbook | None, list[Problem]]:
    """Validate loaded YAML; a playbook only when there are no problems at all."""
    checker = _Checker(loaded)
    playbook = checker.playbook(version or "")
    if checker.problems or playbook is None:
        return None, checker.problems
    if version is None:
        # No file bytes to hash (text loaded directly): hash the validated data instead, which
        # only holds text, numbers, lists and mappings with text keys, so it always serialises.
        canonical = json.dumps(loaded.data, sort_keys=True).encode()
        playbook = replace(playbook, version=hashlib.sha256(canonical).hexdigest()[:16])
    return playbook, []


def load_playbook_file(path: str | Path) -> tuple[Playbook | None, list[Problem]]:
    """Read, parse and validate one playbook file."""
    playbook, problems, _loaded = read_playbook(Path(path))
    return playbook, problems


def playbook_files(directory: str | Path) -> list[Path]:
    """Every `*.yaml` / `*.yml` file directly in `directory`, sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def check_directory(directory: str | Path) -> tuple[dict[str, Playbook], list[Problem]]:
    """Validate every playbook file in `directory`; the good playbooks by key, and all problems."""
    entries = []
    problems: list[Problem] = []
    directory = Path(directory)
    if not directory.is_dir():
        return {}, [Problem(str(directory), 1, 1, "", "playbook directory not found")]
    for path in playbook_files(directory):
        playbook, file_problems, loaded = read_playbook(path)
        problems.extend(file_problems)
        entries.append((str(path), playbook, loaded.where(("key",)) if loaded else (1, 1)))
    playbooks, more = resolve_keys(directory, entries)
    return playbooks, problems + more


def resolve_keys(directory: str | Path, entries: list[tuple[str, Playbook | None, tuple[int, int]]]
                 ) -> tuple[dict[str, Playbook], list[Problem]]:
    """Index good playbooks by key: a key seen twice is a problem at the second file's `key` line."""
    playbooks: dict[str, Playbook] = {}
    owners: dict[str, str] = {}
    problems: list[Problem] = []
    for file, playbook, (line, column) in entries:
        if playbook is None:
            continue
        if playbook.key in playbooks:
            problems.append(Problem(file, line, column, "key",
                                    f"duplicate playbook key '{playbook.key}': already defined in "
                                    f"{owners[playbook.key]}"))
            continue
        playbooks[playbook.key] = playbook
        owners[playbook.key] = file
    # A district without LOCKDOWN finds out at the worst moment; say so on every check.
    missing = [action for action in SRP_ACTIONS if action not in playbooks]
    if missing:
        which = (f"no playbook with key '{missing[0]}'" if len(missing) == 1
                 else "no playbooks with keys " + ", ".join(f"'{key}'" for key in missing))
        problems.append(Problem(str(directory), 1, 1, "key", f"{which}: the five SRP actions "
                                                              f"({', '.join(SRP_ACTIONS)}) must always be available"))
    return playbooks, problems


def sorted_playbooks(playbooks: Iterable[Playbook]) -> list[Playbook]:
    """Playbooks in display order: SRP actions in SRP order, then the rest by name."""
    return sorted(playbooks, key=display_order)


def read_playbook(path: Path) -> tuple[Playbook | None, list[Problem], LoadedYaml | None]:
    """Like `load_playbook_file`, plus the loaded YAML (for positions); None if unreadable."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), 1, 1, "", f"cannot read file: {exc}")], None
    version = hashlib.sha256(raw).hexdigest()[:16]
    try:
        loaded = load_text(text, str(path))
    except Exception as exc:  # noqa: BLE001 - a reload must survive whatever the YAML layer throws
        return None, [Problem(str(path), 1, 1, "", f"cannot parse YAML: {exc}")], None
    playbook, problems = parse_playbook(loaded, version)
    return playbook, problems, loaded
