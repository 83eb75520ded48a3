"""State-store steps: each runs in its caller's transaction, alone or batched with others.

A step is a value (`Op`): StateStore runs one in a transaction of its own, StateCalls runs
the steps of concurrent records together in one. Every step is complete in itself, so
committing several at once changes nothing about what any one of them means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sqlalchemy import Connection, delete, func, select

from catalog_sync.changes.state.schema import (
    AppliedRecord,
    LedgerEntry,
    RunChange,
    catalog_records,
    commit_ledger,
    loaded_files,
    run_changes,
)
from catalog_sync.changes.state.statements import (
    APPLIED_CHANGE,
    APPLIED_LEDGER,
    APPLIED_RECORDS,
    FIRST_CREATE_INTENT,
    LEDGER_ENTRY,
    PENDING_CREATES,
    PREVIOUS_STATE,
    first_intent,
    upsert,
)

T = TypeVar("T")

# Keys per IN (...) query: far below SQLite's bound-parameter limit.
_IN_BATCH = 500


@dataclass(frozen=True)
class Op(Generic[T]):
    """One step against the state store; `writes` makes SQLite take the write lock up front."""

    run: Callable[[Connection], T]
    writes: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; they were written in UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


# -- files ------------------------------------------------------------------------------------
def is_loaded(vendor: str, sha256: str) -> Op[bool]:
    f = loaded_files.c
    query = select(f.sha256).where(f.vendor == vendor, f.sha256 == sha256)
    return Op(lambda conn: conn.execute(query).first() is not None, writes=False)


def mark_loaded(vendor: str, sha256: str, name: str, run_id: str) -> Op[None]:
    def run(conn: Connection) -> None:
        values = {"vendor": vendor, "sha256": sha256, "name": name, "run_id": run_id}
        upsert(conn, loaded_files, {**values, "loaded_at": _now()}, ["vendor", "sha256"])

    return Op(run, writes=True)


def forget_run_files(run_id: str, vendor: str) -> Op[int]:
    """A reverted run's files count as not loaded, so they can be loaded again."""
    f = loaded_files.c

    def run(conn: Connection) -> int:
        result = conn.execute(delete(loaded_files).where(f.run_id == run_id, f.vendor == vendor))
        return int(result.rowcount or 0)

    return Op(run, writes=True)


# -- records ----------------------------------------------------------------------------------
def applied(ils: str, record_keys: Iterable[str]) -> Op[dict[str, AppliedRecord]]:
    """What we last applied to each of `record_keys` (absent: never applied)."""
    keys = list(record_keys)

    def run(conn: Connection) -> dict[str, AppliedRecord]:
        out: dict[str, AppliedRecord] = {}
        for i in range(0, len(keys), _IN_BATCH):
            params = {"b_ils": ils, "b_keys": keys[i : i + _IN_BATCH]}
            for key, ils_id, fp, deleted, ils_fp in conn.execute(APPLIED_RECORDS, params):
                out[key] = AppliedRecord(ils_id, fp, deleted == "y", ils_fp)
        return out

    return Op(run, writes=False)


def owner_of(ils: str, ils_id: str) -> Op[str | None]:
    """The record key bound to an ILS id (by an applied write or a pending intent)."""
    c, r = catalog_records.c, run_changes.c

    def run(conn: Connection) -> str | None:
        row = conn.execute(
            select(c.record_key).where(c.ils == ils, c.ils_id == ils_id, c.deleted == "n")
        ).first()
        if row is None:
            row = conn.execute(
                select(r.record_key).where(r.ils == ils, r.ils_id == ils_id).limit(1)
            ).first()
        return str(row[0]) if row else None

    return Op(run, writes=False)


def live_records(vendor: str) -> Op[int]:
    """How many records of the vendor the ILS holds from our loads (the delete cap's base)."""
    c = catalog_records.c
    query = select(func.count()).where(c.vendor == vendor, c.deleted == "n")
    return Op(lambda conn: int(conn.execute(query).scalar_one()), writes=False)


# -- ledger -----------------------------------------------------------------------------------
def ledger_entry(key: str) -> Op[LedgerEntry | None]:
    def run(conn: Connection) -> LedgerEntry | None:
        row = conn.execute(LEDGER_ENTRY, {"b_key": key}).first()
        return LedgerEntry(row[0], row[1], row[2]) if row else None

    return Op(run, writes=False)


@dataclass(frozen=True)
class LostCreates:
    """Creates of a record that may have reached the ILS unacknowledged: their stamps (the
    idempotency keys) and the earliest time one of them can have been sent."""

    stamps: tuple[str, ...]
    since: datetime


def lost_creates(ils: str, record_key: str) -> Op[LostCreates | None]:
    """The record's pending creates (ledger) and the first intent to create it (run changes)."""
    params = {"b_ils": ils, "b_record_key": record_key}

    def run(conn: Connection) -> LostCreates | None:
        rows = conn.execute(PENDING_CREATES, params).all()
        if not rows:
            return None
        first_intent = conn.execute(FIRST_CREATE_INTENT, params).scalar_one()
        times = [_aware(t) for t in [first_intent, *(row[1] for row in rows)]]
        since = min(t for t in times if t is not None)
        return LostCreates(tuple(sorted(str(row[0]) for row in rows)), since)

    return Op(run, writes=False)


def create_stamps(run_id: str, ils: str, record_key: str) -> Op[list[str]]:
    """The idempotency keys (create stamps) of a run's creates of one record."""
    c = commit_ledger.c
    query = select(c.idempotency_key).where(
        c.run_id == run_id, c.ils == ils, c.record_key == record_key, c.action == "create"
    )
    return Op(lambda conn: [str(k) for k in conn.execute(query).scalars()], writes=False)


def record_pending(
    key: str,
    *,
    ils: str,
    record_key: str,
    fingerprint: str,
    action: str,
    run_id: str,
    chunk_id: str,
    ils_id: str | None,
) -> Op[None]:
    """Open the ledger entry of a write about to be attempted."""
    values: dict[str, object] = {
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
    }

    def run(conn: Connection) -> None:
        upsert(conn, commit_ledger, {**values, "updated_at": _now()}, ["idempotency_key"])

    return Op(run, writes=True)


def record_intent(
    *,
    run_id: str,
    ils: str,
    vendor: str,
    record_key: str,
    action: str,
    ils_id: str | None,
    pre_image: bytes | None,
) -> Op[None]:
    """Before a write: keep the ILS copy and our state row as they were, for revert.

    The first intent of a run wins, so a retry after a crash never replaces the true
    pre-image with what the crashed attempt had already written.
    """

    def run(conn: Connection) -> None:
        prev = conn.execute(PREVIOUS_STATE, {"b_ils": ils, "b_record_key": record_key}).first()
        conn.execute(
            first_intent(conn),
            {
                "run_id": run_id,
                "ils": ils,
                "record_key": record_key,
                "vendor": vendor,
                "action": action,
                "ils_id": ils_id,
                "pre_image": pre_image,
                "had_state": "y" if prev else "n",
                "prev_ils_id": prev[0] if prev else None,
                "prev_fingerprint": prev[1] if prev else None,
                "prev_ils_fingerprint": prev[2] if prev else None,
                "prev_deleted": prev[3] if prev else None,
                "prev_run_id": prev[4] if prev else None,
                "status": "pending",
                "created_at": _now(),
            },
        )

    return Op(run, writes=True)


def record_applied(
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
) -> Op[None]:
    """Acknowledge a write: ledger, per-record state and run change in one transaction."""

    def run(conn: Connection) -> None:
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
        conn.execute(
            APPLIED_LEDGER,
            {
                "b_key": key,
                "status": "applied",
                "ils_id": ils_id,
                "updated_at": now,
                "detail": None,
                "ack": ack,
            },
        )
        upsert(conn, catalog_records, rec_values, ["ils", "record_key"])
        conn.execute(
            APPLIED_CHANGE,
            {
                "b_run_id": run_id,
                "b_ils": ils,
                "b_record_key": record_key,
                "status": "applied",
                "ils_id": ils_id,
            },
        )

    return Op(run, writes=True)


def record_failed(key: str, detail: str, status: str = "failed") -> Op[None]:
    """Close a ledger entry without a write: failed (ILS refused), skipped or review."""

    def run(conn: Connection) -> None:
        conn.execute(
            commit_ledger.update()
            .where(commit_ledger.c.idempotency_key == key)
            .values(status=status, detail=detail, updated_at=_now())
        )

    return Op(run, writes=True)


# -- revert -----------------------------------------------------------------------------------
def changes_of_run(run_id: str, vendor: str) -> Op[list[RunChange]]:
    """Every record the vendor's run changed (or meant to), by ILS and record key."""
    r = run_changes.c
    query = select(run_changes).where(r.run_id == run_id, r.vendor == vendor)

    def run(conn: Connection) -> list[RunChange]:
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
                created_at=_aware(row["created_at"]),
            )
            for row in rows
        ]

    return Op(run, writes=False)


def record_reverted(change: RunChange, restored_ils_id: str | None) -> Op[None]:
    """After revert put the ILS record back: our state row goes back too, in one step.

    The run's ledger entries are closed as `reverted`, so loading the same file again
    writes again instead of counting the reverted writes as already applied.
    """
    c, r, ledger = catalog_records.c, run_changes.c, commit_ledger.c

    def run(conn: Connection) -> None:
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
                ledger.run_id == change.run_id,
                ledger.ils == change.ils,
                ledger.record_key == change.record_key,
            )
            .values(status="reverted", updated_at=_now())
        )
        conn.execute(
            run_changes.update()
            .where(
                r.run_id == change.run_id, r.ils == change.ils, r.record_key == change.record_key
            )
            .values(status="reverted")
        )

    return Op(run, writes=True)
