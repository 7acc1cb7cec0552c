"""Who is who: the roles people hold and what each may do in general."""

DISTRICT_ADMIN = "district_admin"
SCHOOL_ADMIN = "school_admin"
TEACHER = "teacher"
STAFF = "staff"
NURSE = "nurse"
SECURITY = "security"
PARTNER = "partner"

PERSON_ROLES = (DISTRICT_ADMIN, SCHOOL_ADMIN, TEACHER, STAFF, NURSE, SECURITY)
ADMIN_ROLES = (DISTRICT_ADMIN, SCHOOL_ADMIN)
ALL_ROLES = PERSON_ROLES + (PARTNER,)

PARTNER_KINDS = ("police", "fire", "ems", "emergency_management", "other")
