import marshmallow as ma


class PlaybookSchema(ma.Schema):
    key = ma.fields.String()
    name = ma.fields.String()
    action = ma.fields.String()
    directive = ma.fields.String()
    description = ma.fields.String()
    modes = ma.fields.List(ma.fields.String())
    start_roles = ma.fields.Dict()
    confirm_real = ma.fields.Boolean()
    notifications = ma.fields.List(ma.fields.Dict())
    accountability = ma.fields.Dict()
    checklist = ma.fields.List(ma.fields.Dict())
    compliance_category = ma.fields.String(allow_none=True)
    drill_facts = ma.fields.List(ma.fields.String())
    variants = ma.fields.Dict()
    version = ma.fields.String()
    source_file = ma.fields.String()
    can_start = ma.fields.Dict(metadata={"description": "{drill: bool, real: bool} for the caller"})


class ReloadResultSchema(ma.Schema):
    loaded = ma.fields.List(ma.fields.String())
    problems = ma.fields.List(ma.fields.String())
