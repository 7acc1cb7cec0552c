#!/usr/bin/env bash
# Regenerates the single initial migration from the current models.
# Only valid while no database outside development exists (before the first release);
# after that, add a new revision with `alembic revision --autogenerate` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
rm -f migrations/versions/0001_initial_schema.py
"$PY" - "$tmp" <<'PY'
import sys
from alembic import command
from emergency.migrate import alembic_config
command.revision(alembic_config(f"sqlite:///{sys.argv[1]}/gen.sqlite3"), message="initial schema",
                 autogenerate=True, rev_id="0001")
PY
rm -rf "$tmp"
