import marshmallow as ma

from emergency.schema_fields import SchoolRefSchema


class LoginSchema(ma.Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=254))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))


class UserSchema(ma.Schema):
    kind = ma.fields.String(metadata={"description": "person or partner"})
    id = ma.fields.Integer()
    name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String()
    home_room_id = ma.fields.Integer(allow_none=True)
    schools = ma.fields.List(ma.fields.Nested(SchoolRefSchema))


class LoginResultSchema(ma.Schema):
    token = ma.fields.String()
    expires_at = ma.fields.DateTime()
    user = ma.fields.Nested(UserSchema)
