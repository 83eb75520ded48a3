"""The FOLIO emulator's storage in SQLite: inventory records, SRS records, snapshots, write log."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog_sync.emulator.folio.cql import Compiled, identifier_tokens
from catalog_sync.emulator.folio.kinds import INSTANCE, ITEM, Kind
from catalog_sync.emulator.store_items import Transaction, write_total
from catalog_sync.emulator.store_items import now_text as _now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    hrid TEXT NOT NULL,
    parent_id TEXT,
    barcode TEXT,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (kind, id),
    UNIQUE (kind, hrid)
);
CREATE INDEX IF NOT EXISTS entities_parent ON entities (kind, parent_id);
CREATE UNIQUE INDEX IF NOT EXISTS entities_barcode ON entities (kind, barcode);
CREATE TABLE IF NOT EXISTS identifiers (
    instance_id TEXT NOT NULL,
    entry INTEGER NOT NULL,
    type_id TEXT NOT NULL,
    word TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identifiers_word ON identifiers (word);
CREATE INDEX IF NOT EXISTS identifiers_instance ON identifiers (instance_id);
CREATE TABLE IF NOT EXISTS hrid_counters (prefix TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS srs_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    snapshot_id TEXT NOT NULL,
    instance_id TEXT,
    instance_hrid TEXT,
    state TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS srs_instance ON srs_records (instance_id);
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    resource TEXT NOT NULL,
    record_id TEXT NOT NULL,
    request_id TEXT,
    payload_sha256 TEXT,
    status INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class WriteContext:
    """Who asked for a write: logged with each record it wrote. The payload's digest is taken
    once per request, as a batch request writes hundreds of records."""

    method: str
    path: str
    request_id: str | None
    payload_sha256: str | None


class FolioStore:
    """Single-connection SQLite store, used from the emulator's one event loop."""

    def __init__(self, db_path: Path | str | None) -> None:
        self._db = sqlite3.connect(
            str(db_path) if db_path else ":memory:", isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        if db_path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def transaction(self) -> Transaction:
        """All-or-nothing: a batch, a record and its write-log entry commit together."""
        return Transaction(self._db)

    # -- inventory records -------------------------------------------------------------------

    def get(self, kind: Kind, record_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT body FROM entities WHERE kind = ? AND id = ?", (kind.name, record_id)
        ).fetchone()
        return json.loads(row["body"]) if row else None

    def hrid_owner(self, kind: Kind, hrid: str) -> str | None:
        row = self._db.execute(
            "SELECT id FROM entities WHERE kind = ? AND hrid = ?", (kind.name, hrid)
        ).fetchone()
        return str(row["id"]) if row else None

    def barcode_owner(self, barcode: str) -> str | None:
        # The column holds the lower-cased barcode: FOLIO's unique index is case-insensitive.
        row = self._db.execute(
            "SELECT id FROM entities WHERE kind = ? AND barcode = ?", (ITEM.name, barcode.lower())
        ).fetchone()
        return str(row["id"]) if row else None

    def children(self, kind: Kind, parent_id: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM entities WHERE kind = ? AND parent_id = ?", (kind.name, parent_id)
        ).fetchone()
        return int(row[0])

    def next_hrid(self, kind: Kind) -> str:
        """FOLIO's default HRID settings: prefix + 11 zero-padded digits (e.g. in00000000001)."""
        row = self._db.execute(
            "INSERT INTO hrid_counters (prefix, next) VALUES (?, 2) ON CONFLICT (prefix)"
            " DO UPDATE SET next = next + 1 RETURNING next - 1",
            (kind.hrid_prefix,),
        ).fetchone()
        return f"{kind.hrid_prefix}{int(row[0]):011d}"

    def put(self, kind: Kind, body: dict[str, Any], ctx: WriteContext, status: int) -> None:
        """Insert or replace one record (the caller has checked versions and references)."""
        parent = body.get(kind.parent[0]) if kind.parent else None
        self._db.execute(
            "INSERT INTO entities (kind, id, hrid, parent_id, barcode, version, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET"
            " hrid = excluded.hrid, parent_id = excluded.parent_id, barcode = excluded.barcode,"
            " version = excluded.version, body = excluded.body",
            (
                kind.name,
                body["id"],
                body["hrid"],
                parent,
                str(body["barcode"]).lower() if kind is ITEM and body.get("barcode") else None,
                body["_version"],
                json.dumps(body),
            ),
        )
        if kind is INSTANCE:
            self._index_identifiers(body)
        self.log_write(ctx, kind.name, str(body["id"]), status)

    def delete(self, kind: Kind, record_id: str, ctx: WriteContext) -> None:
        self._db.execute("DELETE FROM entities WHERE kind = ? AND id = ?", (kind.name, record_id))
        self._db.execute("DELETE FROM identifiers WHERE instance_id = ?", (record_id,))
        self.log_write(ctx, kind.name, record_id, 204)

    def _index_identifiers(self, body: dict[str, Any]) -> None:
        self._db.execute("DELETE FROM identifiers WHERE instance_id = ?", (body["id"],))
        rows = [
            (body["id"], n, entry["identifierTypeId"], word)
            for n, entry in enumerate(body.get("identifiers") or [])
            for word in set(identifier_tokens(entry["value"]))
        ]
        self._db.executemany(
            "INSERT INTO identifiers (instance_id, entry, type_id, word) VALUES (?, ?, ?, ?)", rows
        )

    def search(
        self, kind: Kind, where: Compiled | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        clause = f" AND {where.where}" if where else ""
        args = (kind.name, *(where.args if where else ()))
        total = int(
            self._db.execute(
                f"SELECT COUNT(*) FROM entities WHERE kind = ?{clause}", args
            ).fetchone()[0]
        )
        rows = self._db.execute(
            f"SELECT body FROM entities WHERE kind = ?{clause} ORDER BY seq LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return total, [json.loads(row["body"]) for row in rows]

    def matching_ids(self, kind: Kind, where: Compiled) -> list[str]:
        """The ids of `kind` records a compiled CQL query selects (a CQL delete's)."""
        rows = self._db.execute(
            f"SELECT id FROM entities WHERE kind = ? AND {where.where} ORDER BY seq",
            (kind.name, *where.args),
        )
        return [str(row["id"]) for row in rows]

    # -- source record storage ---------------------------------------------------------------

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
        return json.loads(row["body"]) if row else None

    def put_snapshot(self, body: dict[str, Any], ctx: WriteContext, status: int) -> None:
        self._db.execute(
            "INSERT INTO snapshots (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE"
            " SET body = excluded.body",
            (body["jobExecutionId"], json.dumps(body)),
        )
        self.log_write(ctx, "snapshot", str(body["jobExecutionId"]), status)

    def list_snapshots(self, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        total = int(self._db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0])
        rows = self._db.execute(
            "SELECT body FROM snapshots ORDER BY rowid LIMIT ? OFFSET ?", (limit, offset)
        )
        return total, [json.loads(row["body"]) for row in rows]

    def get_record(self, record_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM srs_records WHERE id = ?", (record_id,)).fetchone()
        return json.loads(row["body"]) if row else None

    def put_record(self, body: dict[str, Any], ctx: WriteContext, status: int) -> None:
        holder = body.get("externalIdsHolder") or {}
        self._db.execute(
            "INSERT INTO srs_records (id, snapshot_id, instance_id, instance_hrid, state, body)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " snapshot_id = excluded.snapshot_id, instance_id = excluded.instance_id,"
            " instance_hrid = excluded.instance_hrid, state = excluded.state,"
            " body = excluded.body",
            (
                body["id"],
                body["snapshotId"],
                holder.get("instanceId"),
                holder.get("instanceHrid"),
                body.get("state", "ACTUAL"),
                json.dumps(body),
            ),
        )
        self.log_write(ctx, "srs_record", str(body["id"]), status)

    def records_by(self, column: str, values: list[str]) -> list[dict[str, Any]]:
        """Records whose `column` (id or instance_id, fixed by the caller) is one of `values`."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            rows = self._db.execute(
                f"SELECT body FROM srs_records WHERE {column} IN ({', '.join('?' * len(chunk))})"
                " ORDER BY seq",
                chunk,
            )
            found += [json.loads(row["body"]) for row in rows]
        return found

    def find_records(
        self, filters: dict[str, str], limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Records by column equality; the columns come from a fixed map in the routes."""
        where = "".join(f" AND {column} = ?" for column in filters)
        args = tuple(filters.values())
        total = int(
            self._db.execute(
                f"SELECT COUNT(*) FROM srs_records WHERE 1 = 1{where}", args
            ).fetchone()[0]
        )
        rows = self._db.execute(
            f"SELECT body FROM srs_records WHERE 1 = 1{where} ORDER BY seq LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return total, [json.loads(row["body"]) for row in rows]

    # -- write log ---------------------------------------------------------------------------

    def log_write(self, ctx: WriteContext, resource: str, record_id: str, status: int) -> None:
        self._db.execute(
            "INSERT INTO writes (at, method, path, resource, record_id, request_id,"
            " payload_sha256, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _now(),
                ctx.method,
                ctx.path,
                resource,
                record_id,
                ctx.request_id,
                ctx.payload_sha256,
                status,
            ),
        )

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM writes WHERE seq > ? ORDER BY seq", (since,))
        return [dict(row) for row in rows]

    def write_total(self) -> int:
        return write_total(self._db)

    def write_counts(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT resource || ':' || method AS k, COUNT(*) AS n FROM writes GROUP BY k"
        )
        return {str(row["k"]): int(row["n"]) for row in rows}

    def reset(self) -> None:
        with self.transaction():
            for table in (
                "entities",
                "identifiers",
                "hrid_counters",
                "snapshots",
                "srs_records",
                "writes",
            ):
                self._db.execute(f"DELETE FROM {table}")  # fixed table names
