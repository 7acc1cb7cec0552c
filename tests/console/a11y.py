"""axe-core in the browser tests: every screen is checked, no serious or critical violation allowed.

axe-core comes from its npm package, pinned below. The console has no build step and never serves
it: the test installs the package once into a cache folder (`npm install --prefix`), outside the
repository, and injects `axe.min.js` into the page under test through the DevTools protocol (so the
console's strict Content-Security-Policy stays as it is in production). `.ci/run` installs it the
same way. Offline machines can point AXE_CORE_JS at a copy of `axe.min.js`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

AXE_VERSION = "4.14.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emergency-tests" / f"axe-core-{AXE_VERSION}"
BAD = ("serious", "critical")


def axe_path() -> Path:
    if os.environ.get("AXE_CORE_JS"):
        return Path(os.environ["AXE_CORE_JS"])
    return CACHE / "node_modules" / "axe-core" / "axe.min.js"


def install_axe() -> str | None:
    """Install axe-core into the cache folder; returns why it could not, or None."""
    if axe_path().is_file():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "axe-core is not installed and npm is missing (install node/npm, or set AXE_CORE_JS)"
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--ignore-scripts",
                             f"axe-core@{AXE_VERSION}"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not axe_path().is_file():
        return f"npm could not install axe-core@{AXE_VERSION}: {result.stderr[-500:]}"
    return None


def axe_source() -> tuple[str | None, str | None]:
    """(the axe.min.js source, None) or (None, why not)."""
    reason = install_axe()
    if reason:
        return None, reason
    return axe_path().read_text(encoding="utf-8"), None


def serious_violations(page, source: str) -> list[dict]:
    """Run axe on the page as it is now; the serious and critical violations, briefly."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(source)
    return page.evaluate("""async (bad) => {
        const result = await axe.run(document, { resultTypes: ["violations"] });
        return result.violations.filter((v) => bad.includes(v.impact)).map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`) }));
    }""", list(BAD))


def assert_accessible(page, source: str, screen: str) -> None:
    """Fail with the violations if axe finds a serious or critical one on this screen."""
    found = serious_violations(page, source)
    assert not found, f"axe on {screen}: {found}"
