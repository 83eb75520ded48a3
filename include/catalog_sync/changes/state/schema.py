"""The state store's tables (built by the Alembic migrations), idempotency keys, row types."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, Text

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
    ack: str | None = None  # how the ILS acknowledged it (tells a no-change from a write)


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
    created_at: datetime | None = None  # when the first intent of the run was recorded
