import marshmallow as ma

from emergency.compliance.reports import FORMATS
from emergency.compliance.rules import CATEGORIES
from emergency.runs.partners import (
    PAYLOAD_DESCRIPTION,
    ReportAccountabilitySchema,
    ReportAlertsSchema,
    ReportNoteSchema,
    ReportSummarySchema,
    ReportTimelineRowSchema,
    UnreachableRowSchema,
)
from emergency.schema_fields import NameRoleSchema, SchoolRefSchema, SchoolYearSchema, StrictBoolean, counts, described

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


class RulesFileSchema(ma.Schema):
    name = ma.fields.String()
    source = ma.fields.String()


class StatusSummarySchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "the worst applicable rule status"})
    counts = counts("how many rules have each status")
    behind = ma.fields.List(ma.fields.String(), metadata={"description": "ids of the rules behind"})
    rules = ma.fields.Integer()


class DrillCountSchema(ma.Schema):
    total = ma.fields.Integer()
    manual = ma.fields.Integer()


class SchoolStandingSchema(ma.Schema):
    school = ma.fields.Nested(SchoolRefSchema)
    status = ma.fields.String()
    counts = counts("how many rules have each status")
    drills = ma.fields.Nested(DrillCountSchema)
    behind = ma.fields.List(ma.fields.Nested(RuleResultSchema))


class ComplianceSchema(ma.Schema):
    """One school's report (school, summary, rules) or, without school_id, the district summary (totals, schools)."""

    year = ma.fields.Integer()
    school_year = ma.fields.Nested(SchoolYearSchema)
    today = ma.fields.String()
    rules_file = ma.fields.Nested(RulesFileSchema)
    school = ma.fields.Nested(SchoolRefSchema)
    summary = ma.fields.Nested(StatusSummarySchema)
    drills = ma.fields.Nested(DrillCountSchema)
    rules = ma.fields.List(ma.fields.Nested(RuleResultSchema))
    totals = counts("how many schools have each status")
    schools = ma.fields.List(ma.fields.Nested(SchoolStandingSchema))


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
    school = ma.fields.Nested(SchoolRefSchema)
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
    recorded_by = ma.fields.Nested(NameRoleSchema, allow_none=True)
    recorded_at = ma.fields.String(allow_none=True)


class DrillLogSchema(ma.Schema):
    year = ma.fields.Integer()
    school_year = ma.fields.Nested(SchoolYearSchema)
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


class StaffTimelineRowSchema(ReportTimelineRowSchema):
    payload = described(PAYLOAD_DESCRIPTION)


class ReportSchema(ma.Schema):
    run_id = ma.fields.Integer()
    summary = ma.fields.Nested(ReportSummarySchema)
    timeline = ma.fields.List(ma.fields.Nested(StaffTimelineRowSchema))
    alerts = ma.fields.Nested(ReportAlertsSchema)
    unreachable = ma.fields.List(ma.fields.Nested(UnreachableRowSchema))
    accountability = ma.fields.Nested(ReportAccountabilitySchema)
    notes = ma.fields.List(ma.fields.Nested(ReportNoteSchema))
    generated_at = ma.fields.String()


class TrendRowSchema(ma.Schema):
    run_id = ma.fields.Integer()
    school = ma.fields.Nested(SchoolRefSchema)
    date = ma.fields.String()
    time = ma.fields.String()
    category = ma.fields.String()
    playbook = ma.fields.String(allow_none=True)
    duration_seconds = ma.fields.Integer(allow_none=True)
    seconds_to_full_accountability = ma.fields.Float(allow_none=True)
    recipients_alerted = ma.fields.Integer()
    recipients_acknowledged = ma.fields.Integer()
    ack_rate = ma.fields.Float(allow_none=True)


class AveragesSchema(ma.Schema):
    drills = ma.fields.Integer()
    ack_rate = ma.fields.Float(allow_none=True)
    seconds_to_full_accountability = ma.fields.Float(allow_none=True)


class SchoolTrendSchema(ma.Schema):
    school = ma.fields.Nested(SchoolRefSchema)
    drills = ma.fields.Integer()
    earlier = ma.fields.Nested(AveragesSchema)
    later = ma.fields.Nested(AveragesSchema)


class TrendsSchema(ma.Schema):
    year = ma.fields.Integer()
    school_year = ma.fields.Nested(SchoolYearSchema)
    drills = ma.fields.List(ma.fields.Nested(TrendRowSchema))
    schools = ma.fields.List(ma.fields.Nested(SchoolTrendSchema))
