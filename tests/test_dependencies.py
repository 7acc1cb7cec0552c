"""Every run-time import is declared, every declared dependency is in requirements.lock, and every module imports.

After changing pyproject.toml's dependencies, regenerate the lock: `PYTHON=.venv/bin/python bash tools/lock.sh`.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest
from packaging.requirements import Requirement

import emergency
from tests.conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
DECLARED = [Requirement(line) for line in PROJECT["dependencies"]]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", (REPO / "requirements.lock").read_text(), re.M)
    return {canonical(name): version for name, version in pins}


def imported_top_level_modules() -> set[str]:
    names = set()
    for path in (REPO / "emergency").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name != "emergency"}


def test_every_declared_dependency_is_locked_at_a_version_it_allows():
    pins = locked()
    for requirement in DECLARED:
        name = canonical(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `bash tools/lock.sh`"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: run `bash tools/lock.sh`"


def test_every_run_time_import_is_a_declared_dependency():
    declared = {canonical(r.name) for r in DECLARED}
    distributions = packages_distributions()
    for module in sorted(imported_top_level_modules()):
        owners = {canonical(d) for d in distributions.get(module, [])}
        assert owners, f"emergency imports {module}, which no installed distribution provides"
        assert owners & declared, f"emergency imports {module} ({', '.join(owners)}) but pyproject does not declare it"


@pytest.mark.parametrize("module", sorted(m.name for m in pkgutil.walk_packages(emergency.__path__, "emergency.")
                                          if m.name not in {"emergency.wsgi", "emergency.__main__"}))
def test_every_module_imports(module):
    importlib.import_module(module)
