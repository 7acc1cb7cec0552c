"""What gunicorn loads: `gunicorn emergency.wsgi:app` (see the Procfile)."""

import sys

from emergency.app import create_app, require_migrated
from emergency.config import ConfigError

try:
    app = create_app()
    require_migrated(app)
except (ConfigError, RuntimeError) as exc:
    sys.stderr.write(f"emergency: {exc}\n")
    sys.exit(3)
