import marshmallow as ma


class SchoolSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    code = ma.fields.String()
    name = ma.fields.String()
    address = ma.fields.String()
    timezone = ma.fields.String()
    dismissal_time = ma.fields.String(allow_none=True)


class RoomSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    school_id = ma.fields.Integer()
    number = ma.fields.String()
    name = ma.fields.String()
    floor = ma.fields.String()
    kind = ma.fields.String()
    capacity = ma.fields.Integer(allow_none=True)


class PersonSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String()
    role = ma.fields.String()
    email = ma.fields.String(allow_none=True)
    mobile = ma.fields.String(allow_none=True, metadata={"description": "admins only"})
    home_room_id = ma.fields.Integer(allow_none=True)


class PartnerSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    agency = ma.fields.String()
    name = ma.fields.String()
    role = ma.fields.String()
    email = ma.fields.String(allow_none=True)
    mobile = ma.fields.String(allow_none=True, metadata={"description": "admins only"})
