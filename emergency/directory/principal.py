"""Who is calling, and which schools they may see: the one scoping helper every view uses."""

from __future__ import annotations

from dataclasses import dataclass

from emergency.directory.roles import ADMIN_ROLES, DISTRICT_ADMIN, PARTNER


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a person (staff) or a partner (police, fire, EMS)."""

    account_id: int
    kind: str  # "person" | "partner"
    id: int  # person id or partner id
    name: str
    role: str  # a person role, or "partner"
    email: str
    school_ids: frozenset[int] | None  # None: every school (district admin)
    home_room_id: int | None = None  # a person's home room (where their check-ins default to)

    @property
    def is_partner(self) -> bool:
        return self.role == PARTNER

    @property
    def is_district_admin(self) -> bool:
        return self.role == DISTRICT_ADMIN

    def sees_school(self, school_id: int) -> bool:
        """Whether the school is in scope; out-of-scope schools are answered with 404."""
        return self.school_ids is None or school_id in self.school_ids

    def is_admin_of(self, school_id: int) -> bool:
        """District admins administer every school; school admins their own."""
        return self.role in ADMIN_ROLES and self.sees_school(school_id)

    def actor(self) -> dict:
        """How this caller is recorded on a timeline event."""
        return {"kind": self.kind, "id": self.id, "name": self.name, "role": self.role}
