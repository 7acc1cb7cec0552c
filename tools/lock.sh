#!/usr/bin/env bash
# Regenerate requirements.lock (what the Dockerfile installs) from pyproject.toml's dependencies.
# Run it after changing a dependency:  PYTHON=.venv/bin/python bash tools/lock.sh
# tests/test_dependencies.py fails while a dependency of pyproject.toml is missing from the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
"$python" -m pip install -q pip-tools
CUSTOM_COMPILE_COMMAND="bash tools/lock.sh" "$python" -m piptools compile --quiet --strip-extras \
  --no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml
