"""Imports every model module so that Base.metadata knows every table (Alembic, tests)."""

import emergency.accountability.models  # noqa: F401
import emergency.accounts.models  # noqa: F401
import emergency.alerts.models  # noqa: F401
import emergency.compliance.models  # noqa: F401
import emergency.directory.models  # noqa: F401
import emergency.push.models  # noqa: F401
import emergency.roster.models  # noqa: F401
import emergency.runs.models  # noqa: F401
