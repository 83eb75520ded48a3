"""The state store: files loaded, what was last applied per record, pre-images, the ledger."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from catalog_sync.migrations import alembic_config

# The tables as the Alembic migrations (catalog_sync/migrations) build them; the migrations,
# not this metadata, create and change the schema.
metadata = MetaData()

loaded_files = Table(
    "loaded_files",
    metadata,
    Column("vendor", String(64), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

# What we last applied to each ILS record: the fingerprint makes "unchanged" free of ILS calls;
# ils_fingerprint is what the ILS held right after our write, so a later edit there shows.
catalog_records = Table(
    "catalog_records",
    metadata,
    Column("ils", String(64), primary_key=True),
    Column("record_key", String(255), primary_key=True),
    Column("ils_id", String(64), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("deleted", String(1), nullable=False, default="n"),
    Column("run_id", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("vendor", String(64), nullable=True),
    Column("ils_fingerprint", String(64), nullable=True),
)

# One row per intended write, keyed by the idempotency key: a write is counted only once
# acknowledged here, so any re-run skips what an earlier attempt finished.
commit_ledger = Table(
    "commit_ledger",
    metadata,
    Column("idempotency_key", String(64), primary_key=True),
    Column("ils", String(64), nullable=False),
    Column("record_key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    # pending | applied | failed | skipped | review | reverted
    Column("status", String(16), nullable=False),
    Column("ils_id", String(64), nullable=True),
    Column("run_id", Text, nullable=False),
    Column("chunk_id", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("ack", Text, nullable=True),
)

# What one run did to each record, written before the ILS write: the ILS copy as it was
# (pre-image) and our state row as it was, so catalog_sync_revert can put both back.
run_changes = Table(
    "run_changes",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("ils", String(64), primary_key=True),
    Column("record_key", String(255), primary_key=True),
    Column("vendor", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("ils_id", String(64), nullable=True),
    Column("pre_image", LargeBinary, nullable=True),
    Column("had_state", String(1), nullable=False),
    Column("prev_ils_id", String(64), nullable=True),
    Column("prev_fingerprint", String(64), nullable=True),
    Column("prev_ils_fingerprint", String(64), nullable=True),
    Column("prev_deleted", String(1), nullable=True),
    Column("prev_run_id", Text, nullable=True),
    Column("status", String(16), nullable=False),  # pending | applied | reverted
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def idempotency_key(
    ils: str, record_key: str, fingerprint: str, action: str, base: str | None = None
) -> str:
    """Key of one write: the ILS, the record, the content and the state it was decided from.

    `base` (the fingerprint applied before) makes a later return to an earlier content a new
    write instead of a replay of the old one.
    """
    parts = [ils, record_key, fingerprint, action] + ([base] if base else [])
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class AppliedRecord:
    ils_id: str | None
    fingerprint: str | None
    deleted: bool
    ils_fingerprint: str | None = None


@dataclass(frozen=True)
class LedgerEntry:
    status: str
    ils_id: str | None


@dataclass(frozen=True)
class RunChange:
    """One record a run changed, with what revert needs to undo it."""

    run_id: str
    ils: str
    record_key: str
    vendor: str
    action: str
    ils_id: str | None
    pre_image: bytes | None
    had_state: bool
    prev_ils_id: str | None
    prev_fingerprint: str | None
    prev_ils_fingerprint: str | None
    prev_deleted: bool
    prev_run_id: str | None
    status: str


def _now() -> datetime:
    return datetime.now(UTC)


_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _sqlite_pragmas(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # Mapped tasks may run in parallel processes: WAL + a busy timeout instead of errors.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        if immediate:
            # Own the transaction (pysqlite would run DDL outside one): migrations are atomic.
            dbapi_conn.isolation_level = None

    if immediate:

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # The write lock up front: two tasks opening a new store migrate one after the other.
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(url: str) -> None:
    """`alembic upgrade head` on the store at `url`, serialised between processes."""
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine, immediate=True)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(8315020261128)"))
            current = MigrationContext.configure(conn).get_current_revision()
            if current != _head():
                command.upgrade(alembic_config(connection=conn), "head")
    finally:
        engine.dispose()


class StateStore:
    """SQLAlchemy-backed store: a SQLite file by default, Postgres by URL.

    Opening it brings the schema to the newest migration (once per process and URL).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine, immediate=False)
        with _migrate_lock:
            if url not in _migrated:
                migrate(url)
                _migrated.add(url)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self) -> Any:
        return pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

    def _upsert(self, table: Table, values: dict[str, object], keys: list[str]) -> None:
        stmt = self._insert()(table).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # -- files -------------------------------------------------------------------------------
    def is_loaded(self, vendor: str, sha256: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(loaded_files.c.sha256).where(
                    loaded_files.c.vendor == vendor, loaded_files.c.sha256 == sha256
                )
            ).first()
        return row is not None

    def mark_loaded(self, vendor: str, sha256: str, name: str, run_id: str) -> None:
        self._upsert(
            loaded_files,
            {
                "vendor": vendor,
                "sha256": sha256,
                "name": name,
                "run_id": run_id,
                "loaded_at": _now(),
            },
            ["vendor", "sha256"],
        )

    # -- records -----------------------------------------------------------------------------
    def applied(self, ils: str, record_keys: Iterable[str]) -> dict[str, AppliedRecord]:
        keys = list(record_keys)
        out: dict[str, AppliedRecord] = {}
        c = catalog_records.c
        with self.engine.connect() as conn:
            for i in range(0, len(keys), 500):
                rows = conn.execute(
                    select(
                        c.record_key, c.ils_id, c.fingerprint, c.deleted, c.ils_fingerprint
                    ).where(c.ils == ils, c.record_key.in_(keys[i : i + 500]))
                )
                for key, ils_id, fp, deleted, ils_fp in rows:
                    out[key] = AppliedRecord(ils_id, fp, deleted == "y", ils_fp)
        return out

    def owner_of(self, ils: str, ils_id: str) -> str | None:
        """The record key bound to an ILS id (by an applied write or a pending intent)."""
        c = catalog_records.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.record_key).where(c.ils == ils, c.ils_id == ils_id, c.deleted == "n")
            ).first()
            if row is None:
                r = run_changes.c
                row = conn.execute(
                    select(r.record_key).where(r.ils == ils, r.ils_id == ils_id).limit(1)
                ).first()
        return str(row[0]) if row else None

    def live_records(self, vendor: str) -> int:
        """How many records of the vendor the ILS holds from our loads (the delete cap's base)."""
        c = catalog_records.c
        with self.engine.connect() as conn:
            n = conn.execute(
                select(func.count()).where(c.vendor == vendor, c.deleted == "n")
            ).scalar_one()
        return int(n)

    # -- ledger ------------------------------------------------------------------------------
    def ledger_entry(self, key: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(commit_ledger.c.status, commit_ledger.c.ils_id).where(
                    commit_ledger.c.idempotency_key == key
                )
            ).first()
        return LedgerEntry(row[0], row[1]) if row else None

    def record_pending(
        self,
        key: str,
        *,
        ils: str,
        record_key: str,
        fingerprint: str,
        action: str,
        run_id: str,
        chunk_id: str,
        ils_id: str | None,
    ) -> None:
        self._upsert(
            commit_ledger,
            {
                "idempotency_key": key,
                "ils": ils,
                "record_key": record_key,
                "fingerprint": fingerprint,
                "action": action,
                "status": "pending",
                "ils_id": ils_id,
                "run_id": run_id,
                "chunk_id": chunk_id,
                "detail": None,
                "updated_at": _now(),
            },
            ["idempotency_key"],
        )

    def record_intent(
        self,
        *,
        run_id: str,
        ils: str,
        vendor: str,
        record_key: str,
        action: str,
        ils_id: str | None,
        pre_image: bytes | None,
    ) -> None:
        """Before a write: keep the ILS copy and our state row as they were, for revert.

        The first intent of a run wins, so a retry after a crash never replaces the true
        pre-image with what the crashed attempt had already written.
        """
        c = catalog_records.c
        with self.engine.begin() as conn:
            prev = conn.execute(
                select(c.ils_id, c.fingerprint, c.ils_fingerprint, c.deleted, c.run_id).where(
                    c.ils == ils, c.record_key == record_key
                )
            ).first()
            stmt = (
                self._insert()(run_changes)
                .values(
                    run_id=run_id,
                    ils=ils,
                    record_key=record_key,
                    vendor=vendor,
                    action=action,
                    ils_id=ils_id,
                    pre_image=pre_image,
                    had_state="y" if prev else "n",
                    prev_ils_id=prev[0] if prev else None,
                    prev_fingerprint=prev[1] if prev else None,
                    prev_ils_fingerprint=prev[2] if prev else None,
                    prev_deleted=prev[3] if prev else None,
                    prev_run_id=prev[4] if prev else None,
                    status="pending",
                    created_at=_now(),
                )
                .on_conflict_do_nothing(index_elements=["run_id", "ils", "record_key"])
            )
            conn.execute(stmt)

    def record_applied(
        self,
        key: str,
        *,
        ils: str,
        record_key: str,
        fingerprint: str,
        action: str,
        ils_id: str | None,
        run_id: str,
        vendor: str | None = None,
        ils_fingerprint: str | None = None,
        ack: str | None = None,
    ) -> None:
        """Acknowledge a write: ledger, per-record state and run change in one transaction."""
        now = _now()
        rec_values: dict[str, object] = {
            "ils": ils,
            "record_key": record_key,
            "ils_id": ils_id,
            "fingerprint": fingerprint,
            "deleted": "y" if action == "delete" else "n",
            "run_id": run_id,
            "applied_at": now,
            "vendor": vendor,
            "ils_fingerprint": ils_fingerprint,
        }
        rec = self._insert()(catalog_records).values(**rec_values)
        rec = rec.on_conflict_do_update(
            index_elements=["ils", "record_key"],
            set_={k: v for k, v in rec_values.items() if k not in ("ils", "record_key")},
        )
        r = run_changes.c
        with self.engine.begin() as conn:
            conn.execute(
                commit_ledger.update()
                .where(commit_ledger.c.idempotency_key == key)
                .values(status="applied", ils_id=ils_id, updated_at=now, detail=None, ack=ack)
            )
            conn.execute(rec)
            conn.execute(
                run_changes.update()
                .where(r.run_id == run_id, r.ils == ils, r.record_key == record_key)
                .values(status="applied", ils_id=ils_id)
            )

    def record_failed(self, key: str, detail: str, status: str = "failed") -> None:
        """Close a ledger entry without a write: failed (ILS refused), skipped or review."""
        with self.engine.begin() as conn:
            conn.execute(
                commit_ledger.update()
                .where(commit_ledger.c.idempotency_key == key)
                .values(status=status, detail=detail, updated_at=_now())
            )

    # -- revert ------------------------------------------------------------------------------
    def run_changes(self, run_id: str, vendor: str) -> list[RunChange]:
        """Every record the vendor's run changed (or meant to), by ILS and record key."""
        r = run_changes.c
        query = select(run_changes).where(r.run_id == run_id, r.vendor == vendor)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(r.ils, r.record_key)).mappings().all()
        return [
            RunChange(
                run_id=row["run_id"],
                ils=row["ils"],
                record_key=row["record_key"],
                vendor=row["vendor"],
                action=row["action"],
                ils_id=row["ils_id"],
                pre_image=bytes(row["pre_image"]) if row["pre_image"] is not None else None,
                had_state=row["had_state"] == "y",
                prev_ils_id=row["prev_ils_id"],
                prev_fingerprint=row["prev_fingerprint"],
                prev_ils_fingerprint=row["prev_ils_fingerprint"],
                prev_deleted=row["prev_deleted"] == "y",
                prev_run_id=row["prev_run_id"],
                status=row["status"],
            )
            for row in rows
        ]

    def record_reverted(self, change: RunChange, restored_ils_id: str | None) -> None:
        """After revert put the ILS record back: our state row goes back too, in one step.

        The run's ledger entries are closed as `reverted`, so loading the same file again
        writes again instead of counting the reverted writes as already applied.
        """
        c = catalog_records.c
        r = run_changes.c
        with self.engine.begin() as conn:
            where = (c.ils == change.ils) & (c.record_key == change.record_key)
            if change.had_state:
                conn.execute(
                    catalog_records.update()
                    .where(where)
                    .values(
                        ils_id=restored_ils_id,
                        fingerprint=change.prev_fingerprint,
                        ils_fingerprint=change.prev_ils_fingerprint,
                        deleted="y" if change.prev_deleted else "n",
                        run_id=change.prev_run_id or change.run_id,
                        applied_at=_now(),
                    )
                )
            else:
                conn.execute(delete(catalog_records).where(where))
            conn.execute(
                commit_ledger.update()
                .where(
                    commit_ledger.c.run_id == change.run_id,
                    commit_ledger.c.ils == change.ils,
                    commit_ledger.c.record_key == change.record_key,
                )
                .values(status="reverted", updated_at=_now())
            )
            conn.execute(
                run_changes.update()
                .where(
                    r.run_id == change.run_id,
                    r.ils == change.ils,
                    r.record_key == change.record_key,
                )
                .values(status="reverted")
            )

    def forget_run_files(self, run_id: str, vendor: str) -> int:
        """A reverted run's files count as not loaded, so they can be loaded again."""
        f = loaded_files.c
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(loaded_files).where(f.run_id == run_id, f.vendor == vendor)
            )
        return int(result.rowcount or 0)
