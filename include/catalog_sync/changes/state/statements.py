"""State-store statements the commit path runs per record, each built once per dialect and shape.

Built per call (values(), coercions, its cache key), they cost the state-store thread more
CPU than SQLite's own work on a FOLIO initial load (bench/results/2026-12-01-folio-pipeline);
built once, each call binds only its values as parameters.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from catalog_sync.changes.state.schema import catalog_records, commit_ledger, run_changes


def _insert(conn: Connection) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


_built: dict[tuple[object, ...], Any] = {}


def upsert(conn: Connection, table: Any, values: dict[str, object], keys: list[str]) -> None:
    shape = (conn.dialect.name, table.name, tuple(values), tuple(keys))
    stmt = _built.get(shape)
    if stmt is None:
        insert = _insert(conn)(table)
        stmt = _built.setdefault(
            shape,
            insert.on_conflict_do_update(
                index_elements=keys, set_={k: insert.excluded[k] for k in values if k not in keys}
            ),
        )
    conn.execute(stmt, values)  # the inserted columns are the parameters' keys


def first_intent(conn: Connection) -> Any:
    """INSERT of a run change that leaves one already there (the first intent of a run wins)."""
    shape = (conn.dialect.name, "first_intent")
    stmt = _built.get(shape)
    if stmt is None:
        stmt = _built.setdefault(
            shape,
            _insert(conn)(run_changes).on_conflict_do_nothing(
                index_elements=["run_id", "ils", "record_key"]
            ),
        )
    return stmt


# record_applied's updates, by key; `b_` parameters are the WHERE's, the others are SET.
APPLIED_LEDGER = commit_ledger.update().where(commit_ledger.c.idempotency_key == bindparam("b_key"))
APPLIED_CHANGE = run_changes.update().where(
    run_changes.c.run_id == bindparam("b_run_id"),
    run_changes.c.ils == bindparam("b_ils"),
    run_changes.c.record_key == bindparam("b_record_key"),
)
PREVIOUS_STATE = select(
    catalog_records.c.ils_id,
    catalog_records.c.fingerprint,
    catalog_records.c.ils_fingerprint,
    catalog_records.c.deleted,
    catalog_records.c.run_id,
).where(
    catalog_records.c.ils == bindparam("b_ils"),
    catalog_records.c.record_key == bindparam("b_record_key"),
)

# What we last applied to some records (ops.applied): one IN list, expanded at execution.
APPLIED_RECORDS = select(
    catalog_records.c.record_key,
    catalog_records.c.ils_id,
    catalog_records.c.fingerprint,
    catalog_records.c.deleted,
    catalog_records.c.ils_fingerprint,
).where(
    catalog_records.c.ils == bindparam("b_ils"),
    catalog_records.c.record_key.in_(bindparam("b_keys", expanding=True)),
)
LEDGER_ENTRY = select(commit_ledger.c.status, commit_ledger.c.ils_id, commit_ledger.c.ack).where(
    commit_ledger.c.idempotency_key == bindparam("b_key")
)
# ops.lost_creates: a record's pending creates, and the first intent of one.
PENDING_CREATES = select(commit_ledger.c.idempotency_key, commit_ledger.c.updated_at).where(
    commit_ledger.c.ils == bindparam("b_ils"),
    commit_ledger.c.record_key == bindparam("b_record_key"),
    commit_ledger.c.action == "create",
    commit_ledger.c.status == "pending",
)
FIRST_CREATE_INTENT = select(func.min(run_changes.c.created_at)).where(
    run_changes.c.ils == bindparam("b_ils"),
    run_changes.c.record_key == bindparam("b_record_key"),
    run_changes.c.action == "create",
    run_changes.c.status == "pending",
)
