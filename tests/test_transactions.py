"""One transaction per request, CLI command or job, and the database's differences in one module.

Services flush; whoever owns the transaction commits: the request (`db.commit_request`), the CLI
command (`cli_support.with_app`), the dispatcher for its jobs. Where SQLite and PostgreSQL need
different statements, `emergency/db.py` says so (`is_postgres`, `for_update`, `upsert`, ...), and no
other module reads the dialect. Read from the source (ast, tokens), like tests/test_layers.py.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from emergency.db import db
from emergency.directory.models import School
from emergency.runs.models import Run

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "emergency"

# The adapter itself and the migration runner.
EXEMPT = ("db.py", "migrate.py")

# Every commit outside EXEMPT, by "module:function", with how many and why. A new one fails the test:
# add it here only for a transaction boundary that must be where it is (docs/architecture.md lists them).
ALLOWED_COMMITS: dict[str, tuple[int, str]] = {
    "cli_support:with_app.wrapper": (1, "a CLI command is one transaction, committed when it returns"),
    "cli:serve": (1, "`serve --demo` loads the demo before the server process starts"),
    "alerts.dispatcher:Dispatcher.run_periodic": (1, "a periodic job, committed when it returns"),
    "alerts.dispatcher:Dispatcher.heartbeat": (1, "the dispatcher's liveness row: a job of its own"),
    "alerts.dispatcher:Dispatcher.unregister": (1, "a clean stop: a job of its own"),
    "alerts.dispatcher:Dispatcher.claim": (1, "a claimed batch is committed before anything is sent"),
    "alerts.dispatcher:Dispatcher._settle": (1, "an accepted send a callback moved on first: a job of its own"),
    "alerts.dispatcher:Dispatcher._failed": (1, "each send's outcome is a job of its own"),
    "alerts.dispatcher:Dispatcher._push_summaries": (1, "a run's delivery summary after a batch"),
    "alerts.dispatcher:Dispatcher.poll_stuck": (1, "each polled alert's status is a job of its own"),
    "alerts.recording:AcceptedSends._record": (1, "the sends accepted meanwhile, recorded in one transaction"),
    "alerts.escalation:run_due_escalations": (1, "each escalation holds its run's row until it commits"),
    "accountability.reminders:run_due_reminders": (2, "the read ends, then each reminder with its claim"),
    "roster.service:expected_roster": (2, "a GET works out who was expected where, once, for everyone"),
    "accountability.checkins:record_checkin": (1, "a check-in ends its transaction itself: on PostgreSQL its "
                                                  "tally statement ran outside it, and the phones hear at once"),
    "accountability.checkins:_store_and_tally": (1, "PostgreSQL: the request's reads end before the check-in's "
                                                    "statement, a transaction of its own"),
    "accountability.checkins:apply_untallied": (1, "each late tally is a job of its own"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _domain_modules() -> dict[str, str]:
    return {_module_name(path): path.read_text() for path in sorted(PACKAGE.rglob("*.py"))
            if path.relative_to(PACKAGE).as_posix() not in EXEMPT}


def commits_in(source: str) -> Counter:
    """`.commit(` calls by enclosing function ("Class.method", "outer.inner"; "" at module level)."""
    found: Counter = Counter()

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(child, (*scope, child.name))
                continue
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr == "commit"):
                found[".".join(scope)] += 1
            visit(child, scope)

    visit(ast.parse(source), ())
    return found


def mentions_dialect(source: str) -> list[int]:
    """Lines whose code (not comments or strings) names `dialect`."""
    return [token.start[0] for token in tokenize.generate_tokens(io.StringIO(source).readline)
            if token.type == tokenize.NAME and token.string == "dialect"]


def test_only_the_owners_of_a_transaction_commit():
    found = Counter({f"{module}:{function}": count for module, source in _domain_modules().items()
                     for function, count in commits_in(source).items()})
    allowed = Counter({where: count for where, (count, _why) in ALLOWED_COMMITS.items()})
    assert found == allowed, (
        "services flush and the request, CLI command or job commits (docs/architecture.md); "
        f"unexpected: {dict(found - allowed)}, listed but gone: {dict(allowed - found)}")


def test_only_the_database_module_reads_the_dialect():
    found = {module: lines for module, source in _domain_modules().items() if (lines := mentions_dialect(source))}
    assert found == {}, "ask emergency.db (is_postgres, for_update, upsert, ...) instead of reading the dialect"


@pytest.mark.parametrize(("source", "expected"), [
    ("def f(s):\n    s.commit()\n", {"f": 1}),
    ("class A:\n    def m(self):\n        def inner():\n            db.session.commit()\n        inner()\n",
     {"A.m.inner": 1}),
    ("session.commit()\nx = 1\n", {"": 1}),
    ("def f(s):\n    s.flush()  # not .commit()\n", {}),
])
def test_commits_are_found_in_their_function(source, expected):
    assert commits_in(source) == Counter(expected)


def test_a_dialect_in_code_is_found_but_not_in_a_comment_or_an_import_path():
    source = ("from sqlalchemy.dialects import postgresql  # the dialect\n"
              "name = session.get_bind().dialect.name\n")
    assert mentions_dialect(source) == [2]


# -- the request's commit ---------------------------------------------------------------------------

def test_a_request_commits_what_its_view_wrote_only_when_it_answers_with_success(app, client, session):
    def add_school(code: str, status: int):
        db.session.add(School(code=code, name=code, timezone="UTC"))
        db.session.flush()
        return {"code": code}, status

    app.add_url_rule("/test/ok", "test_ok", lambda: add_school("OK", 201), methods=["POST"])
    app.add_url_rule("/test/refused", "test_refused", lambda: add_school("NO", 409), methods=["POST"])

    assert client.post("/test/ok").status_code == 201
    assert client.post("/test/refused").status_code == 409

    session.rollback()
    assert list(session.scalars(select(School.code))) == ["OK"]


def test_a_commit_that_fails_is_a_503_and_no_live_push_goes_out(client, session, make_school, make_person, login,
                                                                 pushes, monkeypatch):
    school = make_school()
    headers = login(make_person("school_admin", [school]))

    def lost():
        raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(db.session, "commit", lost)
    response = client.post("/api/v1/runs", headers=headers,
                           json={"school_id": school.id, "playbook": "lockdown", "mode": "drill"})
    monkeypatch.undo()

    assert response.status_code == 503 and response.get_json()["code"] == "database_unavailable"
    assert pushes.names() == []
    assert session.scalar(select(func.count()).select_from(Run)) == 0
