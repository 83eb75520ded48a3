"""The emulator's catalog in SQLite: biblios, items and the write log, kept across restarts."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog_sync.emulator.records import (
    IDENTIFIER_KEYS,
    BiblioFields,
    duplicate_key,
    read_record,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS biblios (
    biblio_id INTEGER PRIMARY KEY AUTOINCREMENT,
    marcxml BLOB NOT NULL,
    payload_sha256 TEXT NOT NULL,
    control_number TEXT,
    control_number_source TEXT,
    title TEXT,
    author TEXT,
    isbn TEXT,
    duplicate_key TEXT,
    framework_id TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS biblios_control ON biblios (control_number);
CREATE INDEX IF NOT EXISTS biblios_duplicate ON biblios (duplicate_key);
CREATE TABLE IF NOT EXISTS items (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    biblio_id INTEGER NOT NULL REFERENCES biblios (biblio_id),
    external_id TEXT UNIQUE,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_biblio ON items (biblio_id);
CREATE TABLE IF NOT EXISTS identifiers (
    biblio_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (biblio_id, kind, value)
);
CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers (kind, value);
CREATE TABLE IF NOT EXISTS fences (
    scope TEXT PRIMARY KEY,
    token INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS writes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    resource TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    request_id TEXT,
    payload_sha256 TEXT,
    status INTEGER NOT NULL
);
"""


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class WriteContext:
    """Who asked for a write: logged with it."""

    method: str
    path: str
    request_id: str | None
    payload: bytes | None


class CatalogStore:
    """Single-connection SQLite store; the emulator serves from one event loop, so no locking."""

    def __init__(self, db_path: Path | str | None) -> None:
        target = str(db_path) if db_path else ":memory:"
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if db_path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        had_index = self._has_table("identifiers")
        self._db.executescript(_SCHEMA)
        if not had_index:
            self._index_existing()

    def _has_table(self, name: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def _index_existing(self) -> None:
        """A catalog saved before the identifiers index existed gets it built once."""
        rows = self._db.execute("SELECT biblio_id, marcxml FROM biblios").fetchall()
        with self._tx():
            for row in rows:
                _, fields = read_record(bytes(row["marcxml"]), "application/marcxml+xml")
                self._index(int(row["biblio_id"]), fields)

    def _index(self, biblio_id: int, fields: BiblioFields) -> None:
        self._db.execute("DELETE FROM identifiers WHERE biblio_id = ?", (biblio_id,))
        self._db.executemany(
            "INSERT OR IGNORE INTO identifiers (biblio_id, kind, value) VALUES (?, ?, ?)",
            [(biblio_id, kind, value) for kind, value in fields.identifiers],
        )

    def close(self) -> None:
        self._db.close()

    # -- biblios -------------------------------------------------------------------------------

    def find_duplicate(self, fields: BiblioFields) -> int | None:
        key = duplicate_key(fields)
        if key is None:
            return None
        row = self._db.execute(
            "SELECT biblio_id FROM biblios WHERE duplicate_key = ? ORDER BY biblio_id LIMIT 1",
            ("|".join(key),),
        ).fetchone()
        return int(row["biblio_id"]) if row else None

    def add_biblio(
        self, marcxml: bytes, fields: BiblioFields, framework: str, ctx: WriteContext
    ) -> int:
        now = _now()
        key = duplicate_key(fields)
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO biblios (marcxml, payload_sha256, control_number,"
                " control_number_source, title, author, isbn, duplicate_key, framework_id,"
                " created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    marcxml,
                    sha256_hex(marcxml),
                    fields.control_number,
                    fields.control_number_source,
                    fields.title,
                    fields.author,
                    fields.isbn,
                    "|".join(key) if key else None,
                    framework,
                    now,
                    now,
                ),
            )
            biblio_id = int(cur.lastrowid or 0)
            self._index(biblio_id, fields)
            self._log_write(ctx, "biblio", biblio_id, 200, now)
        return biblio_id

    def update_biblio(
        self, biblio_id: int, marcxml: bytes, fields: BiblioFields, ctx: WriteContext
    ) -> bool:
        now = _now()
        key = duplicate_key(fields)
        with self._tx():
            cur = self._db.execute(
                "UPDATE biblios SET marcxml = ?, payload_sha256 = ?, control_number = ?,"
                " control_number_source = ?, title = ?, author = ?, isbn = ?, duplicate_key = ?,"
                " updated_at = ? WHERE biblio_id = ?",
                (
                    marcxml,
                    sha256_hex(marcxml),
                    fields.control_number,
                    fields.control_number_source,
                    fields.title,
                    fields.author,
                    fields.isbn,
                    "|".join(key) if key else None,
                    now,
                    biblio_id,
                ),
            )
            if cur.rowcount == 0:
                return False
            self._index(biblio_id, fields)
            self._log_write(ctx, "biblio", biblio_id, 200, now)
        return True

    def delete_biblio(self, biblio_id: int, ctx: WriteContext) -> bool:
        now = _now()
        with self._tx():
            cur = self._db.execute("DELETE FROM biblios WHERE biblio_id = ?", (biblio_id,))
            if cur.rowcount == 0:
                return False
            self._db.execute("DELETE FROM identifiers WHERE biblio_id = ?", (biblio_id,))
            self._log_write(ctx, "biblio", biblio_id, 204, now)
        return True

    def get_biblio(self, biblio_id: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM biblios WHERE biblio_id = ?", (biblio_id,)
        ).fetchone()
        return row

    def count_biblios(self, filters: dict[str, str]) -> int:
        where, args = self._where(filters)
        return int(self._db.execute(f"SELECT COUNT(*) FROM biblios{where}", args).fetchone()[0])

    def list_biblios(self, filters: dict[str, str], limit: int, offset: int) -> list[sqlite3.Row]:
        where, args = self._where(filters)
        return list(
            self._db.execute(
                f"SELECT * FROM biblios{where} ORDER BY biblio_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        )

    @staticmethod
    def _where(filters: dict[str, str]) -> tuple[str, list[str]]:
        # Column names come from a fixed allow-list in the app, values are bound.
        if not filters:
            return "", []
        clauses: list[str] = []
        args: list[str] = []
        for column, value in filters.items():
            if column in IDENTIFIER_KEYS:
                clauses.append(
                    "biblio_id IN (SELECT biblio_id FROM identifiers WHERE kind = ? AND value = ?)"
                )
                args += [column, value]
            else:
                clauses.append(f"{column} = ?")
                args.append(value)
        return f" WHERE {' AND '.join(clauses)}", args

    def item_count(self, biblio_id: int) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM items WHERE biblio_id = ?", (biblio_id,)
            ).fetchone()[0]
        )

    # -- items ---------------------------------------------------------------------------------

    def barcode_taken(self, external_id: str, except_item: int | None = None) -> bool:
        row = self._db.execute(
            "SELECT item_id FROM items WHERE external_id = ? AND item_id != ?",
            (external_id, except_item or -1),
        ).fetchone()
        return row is not None

    def add_item(self, biblio_id: int, body: dict[str, Any], ctx: WriteContext) -> dict[str, Any]:
        now = _now()
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO items (biblio_id, external_id, body) VALUES (?, ?, ?)",
                (biblio_id, body.get("external_id"), json.dumps(body)),
            )
            item_id = int(cur.lastrowid or 0)
            self._log_write(ctx, "item", item_id, 201, now)
        return self.get_item(item_id) or {}

    def update_item(self, item_id: int, body: dict[str, Any], ctx: WriteContext) -> dict[str, Any]:
        now = _now()
        with self._tx():
            self._db.execute(
                "UPDATE items SET external_id = ?, body = ? WHERE item_id = ?",
                (body.get("external_id"), json.dumps(body), item_id),
            )
            self._log_write(ctx, "item", item_id, 200, now)
        return self.get_item(item_id) or {}

    def delete_item(self, item_id: int, ctx: WriteContext) -> bool:
        now = _now()
        with self._tx():
            cur = self._db.execute("DELETE FROM items WHERE item_id = ?", (item_id,))
            if cur.rowcount == 0:
                return False
            self._log_write(ctx, "item", item_id, 204, now)
        return True

    def get_item(self, item_id: int) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM items WHERE item_id = ?", (item_id,)).fetchone()
        return self._item_json(row) if row else None

    def list_items(
        self, biblio_id: int | None, external_id: str | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        clauses: list[str] = []
        args: list[object] = []
        if biblio_id is not None:
            clauses.append("biblio_id = ?")
            args.append(biblio_id)
        if external_id is not None:
            clauses.append("external_id = ?")
            args.append(external_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        total = int(self._db.execute(f"SELECT COUNT(*) FROM items{where}", args).fetchone()[0])
        rows = self._db.execute(
            f"SELECT * FROM items{where} ORDER BY item_id LIMIT ? OFFSET ?", [*args, limit, offset]
        )
        return total, [self._item_json(row) for row in rows]

    @staticmethod
    def _item_json(row: sqlite3.Row) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(row["body"])
        return {**body, "item_id": int(row["item_id"]), "biblio_id": int(row["biblio_id"])}

    # -- fencing tokens ------------------------------------------------------------------------

    def admit_fences(self, fences: dict[str, int]) -> str | None:
        """Keep the highest fencing token per lease scope; the first stale scope, or None.

        A token equal to the highest is the same holder retrying, so it is let through.
        """
        if not fences:
            return None
        with self._tx():
            for scope, token in sorted(fences.items()):
                row = self._db.execute(
                    "SELECT token FROM fences WHERE scope = ?", (scope,)
                ).fetchone()
                if row is not None and int(row["token"]) > token:
                    return scope
            self._db.executemany(
                "INSERT INTO fences (scope, token) VALUES (?, ?) ON CONFLICT (scope)"
                " DO UPDATE SET token = MAX(token, excluded.token)",
                sorted(fences.items()),
            )
        return None

    # -- write log -----------------------------------------------------------------------------

    def _log_write(
        self, ctx: WriteContext, resource: str, record_id: int, status: int, at: str
    ) -> None:
        self._db.execute(
            "INSERT INTO writes (at, method, path, resource, record_id, request_id,"
            " payload_sha256, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                ctx.method,
                ctx.path,
                resource,
                record_id,
                ctx.request_id,
                sha256_hex(ctx.payload) if ctx.payload is not None else None,
                status,
            ),
        )

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM writes WHERE seq > ? ORDER BY seq", (since,))
        return [dict(row) for row in rows]

    def write_counts(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT resource || ':' || method AS k, COUNT(*) AS n FROM writes GROUP BY k"
        )
        return {str(row["k"]): int(row["n"]) for row in rows}

    def holdings_summary(self) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT biblio_id, payload_sha256, control_number, control_number_source"
            " FROM biblios ORDER BY biblio_id"
        )
        return [dict(row) for row in rows]

    def reset(self) -> None:
        with self._tx():
            for table in ("items", "identifiers", "biblios", "writes", "fences", "sqlite_sequence"):
                self._db.execute(f"DELETE FROM {table}")  # fixed table names

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT so a write and its log entry land together or not at all."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
