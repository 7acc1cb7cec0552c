import marshmallow as ma

from emergency.schema_fields import described


class PlaybookAccountabilitySchema(ma.Schema):
    required = ma.fields.Boolean()
    reminder_minutes = ma.fields.Integer()
    deadline_minutes = ma.fields.Integer()
    rooms = ma.fields.Boolean(metadata={"description": "rooms may be reported"})
    assembly_points = ma.fields.List(ma.fields.String())
    partner_missing_names = ma.fields.Boolean()


class ChecklistItemSchema(ma.Schema):
    step = ma.fields.String()
    role = ma.fields.String()


class NotificationRuleSchema(ma.Schema):
    audience = ma.fields.List(ma.fields.String())
    modes = ma.fields.List(ma.fields.String())
    channels = ma.fields.List(ma.fields.String())
    templates = described("the message template of each occasion (start, update, all_clear, cancel...)",
                          ma.fields.String())
    require_ack = ma.fields.Boolean()
    escalate_after_seconds = ma.fields.Integer(allow_none=True)
    priority = ma.fields.Integer()


class PlaybookSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    action = ma.fields.String()
    directive = ma.fields.String()
    description = ma.fields.String()
    modes = ma.fields.List(ma.fields.String())
    start_roles = described("for each mode, the roles that may start it", ma.fields.List(ma.fields.String()))
    confirm_real = ma.fields.Boolean()
    notifications = ma.fields.List(ma.fields.Nested(NotificationRuleSchema))
    accountability = ma.fields.Nested(PlaybookAccountabilitySchema)
    checklist = ma.fields.List(ma.fields.Nested(ChecklistItemSchema))
    compliance_category = ma.fields.String(allow_none=True)
    drill_facts = ma.fields.List(ma.fields.String())
    variants = described("for each hazard (tornado...), its directive", ma.fields.String())
    version = ma.fields.String()
    source_file = ma.fields.String()
    can_start = described("for each mode (drill, real): whether the caller may start it", ma.fields.Boolean())


class ReloadResultSchema(ma.Schema):
    loaded = ma.fields.List(ma.fields.String())
    problems = ma.fields.List(ma.fields.String())
