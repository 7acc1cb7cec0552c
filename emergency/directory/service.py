"""Reading the directory within the caller's scope."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from emergency.directory.models import Partner, Person, Room, School, partner_schools, person_schools
from emergency.directory.principal import Principal
from emergency.directory.roles import ADMIN_ROLES, DISTRICT_ADMIN
from emergency.errors import NotFound


def schools_in_scope(session: Session, principal: Principal) -> list[School]:
    """The schools the caller may see."""
    query = select(School).order_by(School.code)
    if principal.school_ids is not None:
        query = query.where(School.id.in_(principal.school_ids or [-1]))
    return list(session.scalars(query))


def get_school(session: Session, principal: Principal, school_id: int) -> School:
    """One school in scope; 404 whether it is missing or out of scope, so existence never leaks."""
    school = session.get(School, school_id)
    if school is None or not principal.sees_school(school_id):
        raise NotFound(f"School {school_id} was not found.")
    return school


def rooms_of(session: Session, school_id: int) -> list[Room]:
    return list(session.scalars(select(Room).where(Room.school_id == school_id).order_by(Room.number)))


def people_of(session: Session, school_id: int, *, include_district: bool = True) -> list[Person]:
    """Active staff of a school, plus (optionally) district admins, who cover every school."""
    query = select(Person).where(Person.active.is_(True))
    members = select(person_schools.c.person_id).where(person_schools.c.school_id == school_id)
    if include_district:
        query = query.where((Person.id.in_(members)) | (Person.role == DISTRICT_ADMIN))
    else:
        query = query.where(Person.id.in_(members))
    return list(session.scalars(query.order_by(Person.name, Person.id)))


def partners_of(session: Session, school_id: int) -> list[Partner]:
    """Active partners covering a school."""
    covering = select(partner_schools.c.partner_id).where(partner_schools.c.school_id == school_id)
    return list(session.scalars(select(Partner).where(Partner.active.is_(True), Partner.id.in_(covering))
                                .order_by(Partner.agency, Partner.name)))


def contact_view(principal: Principal, school_id: int, row: Person | Partner) -> dict:
    """A person or partner as this caller may see them: mobiles for admins, never for partners."""
    view = {c: getattr(row, c) for c in ("id", "name", "role", "email", "mobile")}
    if isinstance(row, Person):
        view["home_room_id"] = row.home_room_id
    else:
        view["agency"] = row.agency
    if not (principal.role in ADMIN_ROLES and principal.sees_school(school_id)):
        view["mobile"] = None
    if principal.is_partner:
        view["email"] = None
    return view
