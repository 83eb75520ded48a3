"""The state store: files loaded, what was last applied per record, and the commit ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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

# What we last applied to each ILS record: the fingerprint makes "unchanged" free of ILS calls.
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
)

# One row per intended write, keyed by (ILS, record key, content fingerprint, action): a write is
# counted only once acknowledged here, so any re-run skips what an earlier attempt finished.
commit_ledger = Table(
    "commit_ledger",
    metadata,
    Column("idempotency_key", String(64), primary_key=True),
    Column("ils", String(64), nullable=False),
    Column("record_key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # pending | applied | failed
    Column("ils_id", String(64), nullable=True),
    Column("run_id", Text, nullable=False),
    Column("chunk_id", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def idempotency_key(ils: str, record_key: str, fingerprint: str, action: str) -> str:
    return hashlib.sha256(
        f"{ils}\x1f{record_key}\x1f{fingerprint}\x1f{action}".encode()
    ).hexdigest()


@dataclass(frozen=True)
class AppliedRecord:
    ils_id: str | None
    fingerprint: str | None
    deleted: bool


@dataclass(frozen=True)
class LedgerEntry:
    status: str
    ils_id: str | None


def _now() -> datetime:
    return datetime.now(UTC)


class StateStore:
    """SQLAlchemy-backed store: a SQLite file by default, Postgres by URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            # Mapped tasks may run in parallel processes: WAL + a busy timeout instead of errors.
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

        metadata.create_all(self.engine)

    def _upsert(self, table: Table, values: dict[str, object], keys: list[str]) -> None:
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(table).values(**values)
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
        with self.engine.connect() as conn:
            for i in range(0, len(keys), 500):
                rows = conn.execute(
                    select(
                        catalog_records.c.record_key,
                        catalog_records.c.ils_id,
                        catalog_records.c.fingerprint,
                        catalog_records.c.deleted,
                    ).where(
                        catalog_records.c.ils == ils,
                        catalog_records.c.record_key.in_(keys[i : i + 500]),
                    )
                )
                for key, ils_id, fp, deleted in rows:
                    out[key] = AppliedRecord(ils_id, fp, deleted == "y")
        return out

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
    ) -> None:
        """Acknowledge a write: ledger and per-record state change in one transaction."""
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        now = _now()
        rec_values = {
            "ils": ils,
            "record_key": record_key,
            "ils_id": ils_id,
            "fingerprint": fingerprint,
            "deleted": "y" if action == "delete" else "n",
            "run_id": run_id,
            "applied_at": now,
        }
        rec = insert(catalog_records).values(**rec_values)
        rec = rec.on_conflict_do_update(
            index_elements=["ils", "record_key"],
            set_={k: v for k, v in rec_values.items() if k not in ("ils", "record_key")},
        )
        with self.engine.begin() as conn:
            conn.execute(
                commit_ledger.update()
                .where(commit_ledger.c.idempotency_key == key)
                .values(status="applied", ils_id=ils_id, updated_at=now, detail=None)
            )
            conn.execute(rec)

    def record_failed(self, key: str, detail: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                commit_ledger.update()
                .where(commit_ledger.c.idempotency_key == key)
                .values(status="failed", detail=detail, updated_at=_now())
            )
