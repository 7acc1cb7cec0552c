"""The layers of the code base, and a check of every import against them.

This is the one definition of the layers; docs/architecture.md shows it (and a test below keeps the
two the same). A module may import its own layer's modules and any lower layer's, never a higher
one, not even inside a function; and no two parts may import each other, directly or round a loop.
The imports are read from the source (ast), so an import inside a function or under TYPE_CHECKING
counts like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "emergency"

# Lowest first. Each entry is a module or package under emergency/, and a part of its own: the
# longest entry that a module's name starts with places it. Edges are the ways in (HTTP, SMS, CLI,
# live connections, metrics) and the composition roots; the api/views/cli/webhooks modules of any
# package sit in the edge layer, each a part of its own (EDGE_MODULES).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kernel", ("errors", "timeutil", "db", "config", "yamlfile", "csvfiles", "checking", "schema_fields", "phones",
                "serving", "migrate", "logs", "metrics.instruments", "realtime.push", "realtime.coalesce")),
    ("directory", ("directory",)),
    ("accounts", ("accounts",)),
    ("playbooks", ("playbooks",)),
    ("runs", ("runs",)),
    ("push subscriptions", ("push",)),
    ("alerts", ("alerts",)),
    ("accountability", ("accountability",)),
    ("rosters, compliance, inbound SMS", ("roster", "compliance", "sms")),
    ("privacy", ("privacy",)),
    ("edges", ("web", "cli_support", "console", "realtime", "metrics", "alerts.setup", "demo", "models",
               "app", "cli", "wsgi", "__main__")),
)
EDGE_MODULES = ("api", "views", "cli", "webhooks")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The emergency modules `name` imports anywhere in its source."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            # `from emergency.runs import timeline` imports the module emergency.runs.timeline
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    return {target for target in found if target in modules and target != "emergency"}


def _place(name: str) -> tuple[int, str] | None:
    """(layer index, part) of an emergency module, or None if no layer names it."""
    short = name.removeprefix("emergency.")
    parts = short.split(".")
    if len(parts) > 1 and parts[-1] in EDGE_MODULES:
        return len(LAYERS) - 1, short
    best = None
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if (short == entry or short.startswith(entry + ".")) and (best is None or len(entry) > len(best[1])):
                best = (index, entry)
    return best


def _graph() -> tuple[dict[str, tuple[int, str]], list[tuple[str, str]]]:
    modules = _modules()
    places = {name: _place(name) for name in modules if name != "emergency"}
    edges = [(name, target) for name, path in modules.items() if name != "emergency"
             for target in sorted(_imports(name, path, modules))]
    return places, edges


def _cycles(parts: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in parts.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(parts):
        if node not in index:
            visit(node)
    return groups


def test_every_module_has_a_layer():
    places, _ = _graph()
    unplaced = sorted(name for name, place in places.items() if place is None)
    assert not unplaced, f"add these modules to LAYERS in {Path(__file__).name}: {unplaced}"


def test_no_module_imports_a_higher_layer():
    places, edges = _graph()
    upward = [f"{source} -> {target} ({LAYERS[places[source][0]][0]} imports {LAYERS[places[target][0]][0]})"
              for source, target in edges
              if places[source] and places[target] and places[source][0] < places[target][0]]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_cycle_between_parts():
    places, edges = _graph()
    parts: dict[str, set[str]] = {}
    for source, target in edges:
        if places[source] and places[target] and places[source][1] != places[target][1]:
            parts.setdefault(places[source][1], set()).add(places[target][1])
    cycles = _cycles(parts)
    detail = [" <-> ".join(group) + ": " + ", ".join(
        f"{s} -> {t}" for s, t in edges if places[s] and places[t] and places[s][1] in group
        and places[t][1] in group and places[s][1] != places[t][1]) for group in cycles]
    assert not cycles, "import cycles between parts:\n" + "\n".join(detail)


@pytest.mark.parametrize("source, expected", [
    ("from emergency.runs import timeline", {"emergency.runs.timeline"}),
    ("from emergency.runs import timeline, Run", {"emergency.runs.timeline", "emergency.runs"}),
    ("def f():\n    from emergency.alerts.fanout import fan_out", {"emergency.alerts.fanout"}),
    ("import emergency.errors", {"emergency.errors"}),
])
def test_imports_inside_functions_and_of_submodules_are_seen(tmp_path, source, expected):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _imports("emergency.probe", path, _modules()) == expected


def test_a_cycle_is_found():
    assert _cycles({"runs": {"alerts"}, "alerts": {"runs"}, "kernel": set()}) == [["alerts", "runs"]]


def layers_table() -> str:
    """The LAYERS as docs/architecture.md shows them, highest first."""
    rows = [f"| {number} | {name} | {', '.join(f'`{entry}`' for entry in entries)} |"
            for number, (name, entries) in reversed(list(enumerate(LAYERS)))]
    return "\n".join(["| layer | name | modules and packages |", "|---|---|---|", *rows])


def test_the_architecture_document_shows_these_layers():
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert layers_table() in text, "docs/architecture.md must contain this table:\n" + layers_table()
