"""Opening the state store's database: SQLite settings, retry on a locked database, migrations."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DBAPIError

from catalog_sync.migrations import HEAD_REVISION, alembic_config

T = TypeVar("T")

STATE_URL_VARIABLE = "catalog_sync_state_url"

# Execution option telling the SQLite "begin" hook that the transaction will write.
_WRITES = "catalog_sync_writes"
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# Postgres: deadlock_detected, serialization_failure. Group commits update several records'
# rows in one transaction, so two processes can deadlock where single-row ones could not.
_PG_RETRYABLE = frozenset({"40P01", "40001"})


@dataclass(frozen=True)
class Contention:
    """How long a state call waits for a locked SQLite database before it gives up.

    Each attempt waits up to `busy_timeout_ms` inside SQLite, then the whole transaction is
    retried after a jittered backoff (doubling from `backoff` up to `max_backoff` seconds).
    The defaults ride out a burst of concurrent task processes (about 20 s in all); a store
    locked for longer is SQLite under more concurrency than it can take.
    """

    busy_timeout_ms: int = 1000
    attempts: int = 10
    backoff: float = 0.05
    max_backoff: float = 2.0


class StateStoreContended(RuntimeError):
    """The SQLite state store stayed locked through every retry: it needs Postgres."""

    reason = "state_store_contended"

    def __init__(self, url: str, attempts: int) -> None:
        where = make_url(url).database or url
        super().__init__(
            f"the state store is the SQLite file {where}, and it stayed locked through "
            f"{attempts} attempts: more task processes write to it at once than SQLite can "
            f"take. Nothing was recorded by the failed call; a retry of the task is safe. Set "
            f"the Airflow Variable {STATE_URL_VARIABLE!r} to a Postgres URL (for example "
            "postgresql+psycopg2://USER:PASSWORD@HOST/catalog_sync), or lower the pool's "
            "slots and parallelism."
        )


def _is_contention(exc: DBAPIError, dialect: str) -> bool:
    orig = exc.orig
    if dialect == "sqlite":
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            # Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)
    return getattr(orig, "pgcode", None) in _PG_RETRYABLE


def configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, a short busy timeout, and transactions that take the write lock when they begin.

    pysqlite starts a transaction only at the first INSERT/UPDATE and never for DDL; taking
    over BEGIN makes a transaction whole, and BEGIN IMMEDIATE for writers makes a lock wait
    happen up front, where a retry can start the transaction again, instead of half-way
    through it (where WAL refuses to upgrade a stale read snapshot to a write).
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # Readers never wait for the writer, and the one writer never waits for readers.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        writes = bool(conn.get_execution_options().get(_WRITES))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def transact(
    engine: Engine, url: str, work: Callable[[Connection], T], *, writes: bool, policy: Contention
) -> T:
    """Run `work` in one transaction, again from the start while the database is locked."""
    dialect = engine.dialect.name
    delay = policy.backoff
    last: DBAPIError | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITES: writes})
                with conn.begin():
                    return work(conn)
        except DBAPIError as exc:
            if not _is_contention(exc, dialect):
                raise
            last = exc
        if attempt < policy.attempts:
            # Jitter: processes that met at the lock should not all come back at once.
            time.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, policy.max_backoff)
    assert last is not None
    if dialect == "sqlite":
        raise StateStoreContended(url, policy.attempts) from last
    raise last


def _head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _at_head(conn: Connection) -> bool:
    """The store's version table names HEAD_REVISION alone: read with SQL, Alembic not loaded.

    Every task process opens the store, and Alembic (with mako, and the scripts it parses) was a
    third of what parsing the DAG file imported of ours; a store at head (every open but the
    first) needs none of it. Anything else takes the full path.
    """
    if not inspect(conn).has_table("alembic_version"):
        return False
    versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return list(versions) == [HEAD_REVISION]


def migrate(url: str) -> None:
    """`alembic upgrade head` on the store at `url`, serialised between processes."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        # A long wait: the first process to open a new store holds the lock while it migrates.
        configure_sqlite(engine, 30_000)
    try:
        # Every task process opens the store: a store already at head costs it no write lock.
        with engine.connect() as conn:
            with conn.begin():
                if _at_head(conn):
                    return
                head = _head()
                if _revision(conn) == head:
                    return
            conn.execution_options(**{_WRITES: True})
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(8315020261128)"))
                # Again under the lock: another process may have migrated in between.
                if _revision(conn) != head:
                    from alembic import command

                    command.upgrade(alembic_config(connection=conn), "head")
    finally:
        engine.dispose()
