import marshmallow as ma

from emergency.compliance.reports import FORMATS
from emergency.compliance.rules import CATEGORIES
from emergency.web import StrictBoolean

_YEAR = ma.fields.Integer(validate=ma.validate.Range(min=1990, max=2200),
                          metadata={"description": "the year the school year starts (default: the current one)"})


class YearQuerySchema(ma.Schema):
    school_id = ma.fields.Integer(metadata={"description": "one school (default: every school in your scope)"})
    year = _YEAR


class ComplianceQuerySchema(YearQuerySchema):
    summer_session_start = ma.fields.Date(
        metadata={"description": "first day of summer school; without it the summer rules do not apply"})


class RuleResultSchema(ma.Schema):
    rule = ma.fields.String()
    description = ma.fields.String()
    required = ma.fields.Integer()
    done = ma.fields.Integer()
    remaining = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "met | on_track | behind | not_applicable"})
    next_deadline = ma.fields.String(allow_none=True)
    detail = ma.fields.String()


class ComplianceSchema(ma.Schema):
    """One school's report (school, summary, rules) or, without school_id, the district summary (totals, schools)."""

    year = ma.fields.Integer()
    school_year = ma.fields.Dict()
    today = ma.fields.String()
    rules_file = ma.fields.Dict()
    school = ma.fields.Dict()
    summary = ma.fields.Dict()
    drills = ma.fields.Dict()
    rules = ma.fields.List(ma.fields.Nested(RuleResultSchema))
    totals = ma.fields.Dict()
    schools = ma.fields.List(ma.fields.Dict())


class ManualDrillSchema(ma.Schema):
    school_id = ma.fields.Integer(required=True, strict=True)
    category = ma.fields.String(required=True, validate=ma.validate.OneOf(CATEGORIES))
    held_at = ma.fields.AwareDateTime(required=True, metadata={"description": "ISO 8601 with a zone offset"})
    duration_seconds = ma.fields.Integer(load_default=None, allow_none=True, strict=True,
                                         validate=ma.validate.Range(min=0, max=24 * 3600))
    secondary_exit = StrictBoolean(load_default=False)
    summer = StrictBoolean(load_default=False)
    parents_notified_on = ma.fields.Date(load_default=None, allow_none=True)
    note = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(max=2000))


class DrillSchema(ma.Schema):
    source = ma.fields.String(metadata={"description": "system (a run) or manual (entered by hand)"})
    manual = ma.fields.Boolean()
    run_id = ma.fields.Integer(allow_none=True)
    manual_drill_id = ma.fields.Integer(allow_none=True)
    school = ma.fields.Dict()
    category = ma.fields.String()
    playbook = ma.fields.String(allow_none=True)
    held_at = ma.fields.String()
    date = ma.fields.String(metadata={"description": "local date at the school"})
    time = ma.fields.String(metadata={"description": "local time at the school, HH:MM"})
    duration_seconds = ma.fields.Integer(allow_none=True)
    secondary_exit = ma.fields.Boolean()
    summer = ma.fields.Boolean()
    parents_notified_on = ma.fields.String(allow_none=True)
    note = ma.fields.String(allow_none=True)
    recorded_by = ma.fields.Dict(allow_none=True)
    recorded_at = ma.fields.String(allow_none=True)


class DrillLogSchema(ma.Schema):
    year = ma.fields.Integer()
    school_year = ma.fields.Dict()
    drills = ma.fields.List(ma.fields.Nested(DrillSchema))


class FactsSchema(ma.Schema):
    """Drill facts; null clears one. Which ones a drill takes depends on its playbook's drill_facts."""

    secondary_exit = StrictBoolean(allow_none=True)
    summer = StrictBoolean(allow_none=True)
    parents_notified_on = ma.fields.Date(allow_none=True)
    dismissal_time = ma.fields.String(allow_none=True, metadata={
        "description": 'normal dismissal that day, "HH:MM" local time (default: the school\'s)'})


class ReportQuerySchema(ma.Schema):
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(FORMATS),
                              metadata={"description": "json (default), csv or html (a printable page)"})


class ReportSchema(ma.Schema):
    run_id = ma.fields.Integer()
    summary = ma.fields.Dict()
    timeline = ma.fields.List(ma.fields.Dict())
    alerts = ma.fields.Dict()
    unreachable = ma.fields.List(ma.fields.Dict())
    accountability = ma.fields.Dict()
    notes = ma.fields.List(ma.fields.Dict())
    generated_at = ma.fields.String()


class TrendsSchema(ma.Schema):
    year = ma.fields.Integer()
    school_year = ma.fields.Dict()
    drills = ma.fields.List(ma.fields.Dict())
    schools = ma.fields.List(ma.fields.Dict())
