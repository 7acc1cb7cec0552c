"""Small typed pieces the out-schemas share, so /api/openapi.json never shows an opaque object."""

from __future__ import annotations

import marshmallow as ma


def described(description: str, values: ma.fields.Field | None = None, **kwargs) -> ma.fields.Dict:
    """A mapping whose keys vary (by event type, status, channel...): its values typed, its keys described."""
    return ma.fields.Dict(keys=ma.fields.String(), values=values or ma.fields.Raw(),
                          metadata={"description": description}, **kwargs)


def counts(description: str = "a number for each status or channel", **kwargs) -> ma.fields.Dict:
    """A mapping of names to whole numbers."""
    return described(description, ma.fields.Integer(), **kwargs)


class SchoolYearSchema(ma.Schema):
    start = ma.fields.String(metadata={"description": "first day, YYYY-MM-DD"})
    end = ma.fields.String(metadata={"description": "last day, YYYY-MM-DD"})


class PageMetaSchema(ma.Schema):
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    per_page = ma.fields.Integer()
    pages = ma.fields.Integer()


class PersonRefSchema(ma.Schema):
    id = ma.fields.Integer(allow_none=True)
    name = ma.fields.String(allow_none=True)
    role = ma.fields.String(allow_none=True)


class SchoolRefSchema(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()


class ActorSchema(ma.Schema):
    """Who did something: a person, a partner or the system; name and role, never contacts."""

    kind = ma.fields.String(metadata={"description": "person, partner or system"})
    id = ma.fields.Integer()
    name = ma.fields.String()
    role = ma.fields.String()


class NameRoleSchema(ma.Schema):
    name = ma.fields.String(allow_none=True)
    role = ma.fields.String(allow_none=True)


class RoomRefSchema(ma.Schema):
    id = ma.fields.Integer()
    number = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    label = ma.fields.String()


class RoomCountsSchema(ma.Schema):
    """The counts of a room's report (accountability COUNT_FIELDS)."""

    present = ma.fields.Integer(allow_none=True)
    absent = ma.fields.Integer(allow_none=True)
    missing = ma.fields.Integer(allow_none=True)
    injured = ma.fields.Integer(allow_none=True)
    extra = ma.fields.Integer(allow_none=True)


class StrictBoolean(ma.fields.Boolean):
    """JSON true or false only: marshmallow's Boolean takes 0, 1 and "yes" too (1 == True in a set)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value
