"""Engine, sessions and the declarative Base; who ends a transaction; where SQLite and PostgreSQL differ.

Each app owns its engine (tests run two apps side by side); request code uses
`db.session`, scoped to the app context, and background threads open their own
short sessions with `db.new_session(app)`.

One transaction per request, CLI command or job: services flush, the owner of the transaction
commits (`commit_request` for a request, `cli_support.with_app` for a command, the dispatcher for its
jobs). Where the two databases need different statements, the functions below say so, so domain code
never reads the dialect.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC

from flask import Flask, Response, current_app, g, request
from sqlalchemy import JSON, DateTime, MetaData, Table, create_engine, event, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import queue as sqla_queue

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


WRITER_QUEUE_TIMEOUT = 30.0

# What an Integer column holds on PostgreSQL (SQLite holds 64 bits): every integer the API or an
# import accepts for one is bounded by these, so a huge number is a 4xx and never a database error.
MAX_INTEGER = 2**31 - 1
MIN_INTEGER = -(2**31)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use emergency.timeutil.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSON(none_as_null=True), "postgresql")


# --- where SQLite and PostgreSQL differ ----------------------------------------------------------

def backend(bind: Session | Engine | Connection) -> str:
    """"postgresql" or "sqlite": the key of a statement that is built once per database."""
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


def is_postgres(bind: Session | Engine | Connection) -> bool:
    """Whether `bind` talks to PostgreSQL (else SQLite)."""
    return backend(bind) == "postgresql"


def upsert(database: str, model):
    """The INSERT of `database` (a backend() name) for `model`, with on_conflict_do_update/do_nothing (spelt alike)."""
    return (postgresql if database == "postgresql" else sqlite).insert(model)


def for_update(statement, bind: Session | Engine | Connection, *, skip_locked: bool = False):
    """`statement` locking the rows it reads (FOR UPDATE [SKIP LOCKED]) on PostgreSQL.

    SQLite has no row locks: a writer holds the whole database from BEGIN IMMEDIATE (make_engine).
    """
    return statement.with_for_update(skip_locked=skip_locked) if is_postgres(bind) else statement


def insert_rows(session: Session, table: Table, rows: list[dict]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in the session's transaction: on PostgreSQL
    by COPY, elsewhere as one executemany.

    A fan-out writes a row per recipient and channel, thousands at once. As an executemany that was
    three quarters of `POST /api/v1/runs` for 2,000 staff (about 0.3 s of CPU for 4,000 rows, a
    parameter set bound, sent and answered per row); COPY streams them in one statement for a
    quarter of it. Each value goes through its column's bind processing (UTC datetimes, JSON) as in
    an INSERT. COPY applies no Python-side defaults, so every column that has one must be in the rows.
    """
    if not rows:
        return
    columns = list(rows[0])
    defaulted = [c.name for c in table.columns if c.name not in columns and c.default is not None]
    if defaulted:  # on SQLite too, so that a test there finds what PostgreSQL would refuse
        raise ValueError(f"insert_rows: give {', '.join(defaulted)} in the rows of {table.name}: "
                         "COPY does not apply their defaults")
    if not is_postgres(session):
        session.execute(insert(table), rows)
        return
    dialect = session.get_bind().dialect
    processors = [(name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in columns]
    session.flush()  # rows these refer to (the run) go first
    from psycopg import sql

    copy_statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(name) for name in columns))
    driver_connection = session.connection().connection.driver_connection
    with driver_connection.cursor() as cursor, cursor.copy(copy_statement) as copy:
        for row in rows:
            copy.write_row([process(row[name]) if process else row[name] for name, process in processors])


def lock_rows(session: Session, statement) -> None:
    """Run a `SELECT ... FOR UPDATE` to hold its rows until commit; on SQLite the transaction already holds the lock."""
    if is_postgres(session):
        session.execute(statement)


def outside_transaction(session: Session) -> None:
    """Run each following statement of the session on its own: no BEGIN and COMMIT/ROLLBACK round trips,
    and the row locks a statement takes are held only while it runs (a check-in's tally statement).

    PostgreSQL: AUTOCOMMIT, until the session's transaction ends. SQLite keeps its transaction (a
    reader's plain read transaction never takes the write lock).
    """
    if is_postgres(session):
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def runs_outside_transaction(session: Session) -> bool:
    """Whether the session's statements already run each on its own (outside_transaction on PostgreSQL)."""
    return (is_postgres(session)
            and session.connection().get_execution_options().get("isolation_level") == "AUTOCOMMIT")


def reads_outside_transaction(view):
    """Decorate a view whose reads need no transaction and whose writes end the request's themselves
    (a check-in: accountability.checkins). On PostgreSQL its statements run in AUTOCOMMIT from the
    first one, the token lookup included: no BEGIN and COMMIT round trips around the reads, on the
    path every room of a school takes at once. Elsewhere it changes nothing."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not db.session.in_transaction():  # a request's session is new; a test's may be in use already
            outside_transaction(db.session)
        return view(*args, **kwargs)

    return wrapper


def write_during_read(session: Session, *rows) -> None:
    """Store `rows` from a request that only reads (a GET's access log), committed before its answer leaves.

    PostgreSQL: they join the request's transaction, which commits before the response is sent
    (commit_request). SQLite: a GET's transaction is a plain BEGIN without the write lock, so it ends
    here and the rows are committed in a transaction of their own that takes the lock (writing()).
    """
    if is_postgres(session):
        session.add_all(rows)
        return
    session.commit()  # ends the read transaction of a GET
    with writing():
        session.add_all(rows)
        session.commit()  # the rows' own transaction, before the answer that they log


@dataclass(frozen=True)
class PoolSettings:
    """PostgreSQL connections one process keeps (DATABASE_POOL_SIZE) and may add (DATABASE_MAX_OVERFLOW).

    Under gevent one process serves thousands of requests and sockets as greenlets, and each one
    holds a connection from its first query to the end of its request. The pool is then the number
    of requests in the database at once: Python, on one core, is what limits throughput, so a few
    dozen are enough, and those waiting queue for up to `timeout` seconds (gevent's queue, no thread
    blocked). Overflow connections are closed when given back, so a busy process that lives on its
    overflow opens a PostgreSQL backend (a fork) per request: the steady pool must cover the load.
    """

    size: int = 20
    max_overflow: int = 5
    timeout: float = 30.0


def make_engine(url: str, pool: PoolSettings | None = None) -> Engine:
    """Create an engine with the pragmas each backend needs for concurrent use."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # The driver's own transaction handling defers BEGIN; we issue it ourselves.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        # SQLite makes a writer that finds the lock taken sleep and poll for it, in growing steps, so under
        # load some wait far longer than their turn. Writers of this process queue on a lock of ours first.
        writers = threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # SQLite has no row locks and ignores FOR UPDATE. A deferred transaction that reads
            # and then writes fails with "database is locked" when another writer got in first,
            # so every transaction takes the write lock at BEGIN and waits its turn instead --
            # except in requests that only read (GET), which in WAL mode never need it.
            if reading_only.get():
                conn.exec_driver_sql("BEGIN")
                return
            # Past the timeout, go on without our lock: SQLite's own busy wait still protects the data.
            if writers.acquire(timeout=WRITER_QUEUE_TIMEOUT):
                conn.info["queued_writer"] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except Exception:
                _release(conn)
                raise

        def _release(conn):
            if conn.info.pop("queued_writer", False):
                writers.release()

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)

        return engine
    pool = pool or PoolSettings()
    engine = create_engine(url, poolclass=FairQueuePool, pool_size=pool.size, max_overflow=pool.max_overflow,
                           pool_timeout=pool.timeout)
    ping_when_idle(engine)
    cache_long_statements()
    return engine


class _Handoff:
    """A checkout waiting its turn in FairQueuePool: the connection is handed to it directly."""

    __slots__ = ("ready", "record")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.record: ConnectionPoolEntry | None = None


class FairQueuePool(QueuePool):
    """SQLAlchemy's QueuePool, but checkouts that must wait are served in the order they came.

    QueuePool's waiters wait on a condition: a connection given back wakes the first of them, but a
    request that arrives before the woken one runs takes the connection, and the woken one waits again
    at the back. Under gevent, with a burst of requests (a school's rooms reporting at once), some
    check-ins waited half a second for a connection while later ones went through (measured: 1,000
    check-ins from 50 phones on 25 connections, pool waits p50 91 ms and p99 496 ms). Here a connection
    given back while anyone waits goes to the longest waiter, and a checkout that finds others waiting
    queues behind them. The size, the overflow and the timeout are QueuePool's.
    """

    # Its checkout and return messages stay under SQLAlchemy's loggers (silent unless asked for), not
    # this app's, whose lines each carry the ids of the emergency they belong to.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.FairQueuePool"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._waiters: deque[_Handoff] = deque()
        self._turns = threading.Lock()  # guards the waiters and the idle connections together

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        with self._turns:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.record = record
                waiter.ready.set()
                return
            try:
                self._pool.put(record, False)
                return
            except sqla_queue.Full:
                pass
        try:
            record.close()  # an overflow connection nobody waits for
        finally:
            self._dec_overflow()

    def _do_get(self) -> ConnectionPoolEntry:
        with self._turns:
            if not self._waiters:
                try:
                    return self._pool.get(False)
                except sqla_queue.Empty:
                    pass
                create = self._inc_overflow()
            else:
                create = False
            if not create:
                waiter = _Handoff()
                self._waiters.append(waiter)
        if create:
            try:
                return self._create_connection()
            except BaseException:
                self._dec_overflow()
                raise
        if waiter.ready.wait(self._timeout):
            return waiter.record
        with self._turns:
            if waiter.ready.is_set():  # handed a connection just as the wait ran out
                return waiter.record
            self._waiters.remove(waiter)
        raise PoolTimeout(f"QueuePool limit of size {self.size()} overflow {self.overflow()} reached, "
                           f"connection timed out, timeout {self._timeout:0.2f}", code="3o7r")


# psycopg turns each statement's %(name)s placeholders into $n with a regular expression, and caches
# the result only for statements up to 4,096 characters and 50 parameters. A check-in is one
# statement of about 7,300 characters and 55 parameters, run a few hundred times a second: parsed
# anew, it would cost a third of a millisecond of the web process's one core each time. The limits
# stay low enough that lists of ids (IN with one parameter each) still mostly bypass the cache.
CACHED_STATEMENT_LENGTH = 16_384
CACHED_STATEMENT_PARAMS = 64


def cache_long_statements() -> None:
    """Let psycopg cache the conversion of this app's long statements (see above)."""
    try:
        from psycopg import _queries
    except ImportError:  # psycopg's layout changed: statements are still right, only parsed each time
        return
    if hasattr(_queries, "MAX_CACHED_STATEMENT_LENGTH") and hasattr(_queries, "MAX_CACHED_STATEMENT_PARAMS"):
        _queries.MAX_CACHED_STATEMENT_LENGTH = max(_queries.MAX_CACHED_STATEMENT_LENGTH, CACHED_STATEMENT_LENGTH)
        _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, CACHED_STATEMENT_PARAMS)


# A pooled connection that came back this recently is used again without a ping first.
PING_AFTER_IDLE_SECONDS = 1.0


def ping_when_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Check a pooled connection before use only when it sat idle for `idle_seconds` or more.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip, a fifth of a check-in's, on
    every request and on every send the dispatcher records, under load when the connection was in use a
    millisecond ago. A connection that waited in the pool is the one a restart or a firewall may have
    cut; one that came back within the second is not pinged. If the server went away in that second,
    the first statement fails instead (a 503 the client retries) and SQLAlchemy, seeing a disconnect,
    replaces every connection of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc
        if not alive:
            raise DisconnectionError("pooled connection is gone")


# Set for the duration of a GET/HEAD request: its transactions only read.
reading_only: ContextVar[bool] = ContextVar("reading_only", default=False)


@contextmanager
def writing() -> Iterator[None]:
    """Inside a GET request, a transaction that writes (an access log entry): it takes the write lock at BEGIN.

    The caller ends its read transaction first (commit or rollback), then begins this one.
    """
    token = reading_only.set(False)
    try:
        yield
    finally:
        reading_only.reset(token)


class Database:
    """The app's engine and session factory, stored on app.extensions['db']."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"], PoolSettings(
            app.config["DATABASE_POOL_SIZE"], app.config["DATABASE_MAX_OVERFLOW"], app.config["DATABASE_POOL_TIMEOUT"]))
        app.extensions["db"] = {"engine": engine, "sessionmaker": sessionmaker(engine, expire_on_commit=False)}
        app.before_request(self._begin_request)
        app.teardown_request(self._end_request)
        app.teardown_appcontext(self._remove)

    @staticmethod
    def commit_request(response: Response) -> Response:
        """End a request's transaction with its view: commit if the response is a success (below 400).

        The app calls this as the last step of dispatching (app.EmergencyFlask), before the response
        is finalised: a commit that fails still reaches the error handlers (a lost database answers
        503), and live pushes, which wait for the commit, go out only once it succeeded. Anything else
        (an error raised or answered) is rolled back when the request ends (_end_request).
        """
        session = g.get("db_session")
        if session is not None and response.status_code < 400:
            session.commit()
        return response

    @staticmethod
    def _begin_request() -> None:
        g.reading_only_token = reading_only.set(request.method in ("GET", "HEAD"))

    @staticmethod
    def _end_request(_exc=None) -> None:
        token = g.pop("reading_only_token", None)
        if token is not None:
            reading_only.reset(token)
        # A request can share an app context that outlives it (tests, CLI); its transaction must
        # still end with it, or SQLite's write lock would be held until the context goes away.
        session = g.get("db_session")
        if session is not None:
            session.close()

    @staticmethod
    def _remove(_exc=None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    @property
    def session(self) -> Session:
        """The session of the current app context."""
        if "db_session" not in g:
            g.db_session = current_app.extensions["db"]["sessionmaker"]()
        return g.db_session

    def engine(self, app: Flask | None = None) -> Engine:
        return (app or current_app).extensions["db"]["engine"]

    @contextmanager
    def new_session(self, app: Flask | None = None) -> Iterator[Session]:
        """A short-lived session for work outside a request (dispatcher, CLI)."""
        session = (app or current_app).extensions["db"]["sessionmaker"]()
        try:
            yield session
        finally:
            session.close()


db = Database()
