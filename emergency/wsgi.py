"""What gunicorn loads: `gunicorn emergency.wsgi:app` (see the Procfile)."""

import sys

from emergency.app import create_app, require_migrated, start_background
from emergency.config import ConfigError

try:
    app = create_app()
    require_migrated(app)
    start_background(app)
except (ConfigError, RuntimeError) as exc:
    sys.stderr.write(f"emergency: {exc}\n")
    sys.exit(3)
