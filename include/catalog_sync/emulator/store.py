"""The emulator's catalog in SQLite: biblios, items and the write log, kept across restarts."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymarc

from catalog_sync.emulator.query import SUBSTRING_COLUMNS, SUBSTRING_INDEX, Scalar
from catalog_sync.emulator.records import (
    COLUMN_SOURCES,
    MARCXML,
    BiblioFields,
    biblio_fields,
    duplicate_key,
    read_record,
    rebuild,
)
from catalog_sync.emulator.store_items import (
    ItemStore,
    Transaction,
    WriteContext,
    now_text,
    write_total,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS biblios (
    biblio_id INTEGER PRIMARY KEY AUTOINCREMENT,
    marcxml BLOB NOT NULL,
    payload_sha256 TEXT NOT NULL,
    control_number TEXT,
    control_number_source TEXT,
    duplicate_key TEXT,
    "title" TEXT,
    "subtitle" TEXT,
    "medium" TEXT,
    "part_number" TEXT,
    "part_name" TEXT,
    "author" TEXT,
    "series_title" TEXT,
    "abstract" TEXT,
    "notes" TEXT,
    "isbn" TEXT,
    "issn" TEXT,
    "ean" TEXT,
    "lc_control_number" TEXT,
    "publisher" TEXT,
    "publication_place" TEXT,
    "publication_year" TEXT,
    "edition_statement" TEXT,
    "pages" TEXT,
    "url" TEXT,
    "item_type" TEXT,
    framework_id TEXT NOT NULL DEFAULT '',
    creation_date TEXT NOT NULL,
    "timestamp" TEXT NOT NULL,
    serial INTEGER
);
CREATE INDEX IF NOT EXISTS biblios_duplicate ON biblios (duplicate_key);
CREATE INDEX IF NOT EXISTS biblios_title ON biblios (title);
CREATE INDEX IF NOT EXISTS biblios_timestamp ON biblios ("timestamp");
CREATE TABLE IF NOT EXISTS items (
    item_id INTEGER PRIMARY KEY AUTOINCREMENT,
    biblio_id INTEGER NOT NULL REFERENCES biblios (biblio_id),
    external_id TEXT UNIQUE,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_biblio ON items (biblio_id);
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
    status INTEGER NOT NULL,
    payload BLOB
);
"""


# The trigram index behind emulator.query's `-like` searches on standard numbers, kept in step
# with biblios by triggers (an external-content FTS5 table holds no copy of the values).
_NEW = ", ".join(f"new.{c}" for c in SUBSTRING_COLUMNS)
_OLD = ", ".join(f"old.{c}" for c in SUBSTRING_COLUMNS)
_INDEX_SCHEMA = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS {SUBSTRING_INDEX} USING fts5(
    {", ".join(SUBSTRING_COLUMNS)}, content='biblios', content_rowid='biblio_id',
    tokenize='trigram'
);
CREATE TRIGGER IF NOT EXISTS biblio_numbers_ai AFTER INSERT ON biblios BEGIN
    INSERT INTO {SUBSTRING_INDEX} (rowid, {", ".join(SUBSTRING_COLUMNS)})
    VALUES (new.biblio_id, {_NEW});
END;
CREATE TRIGGER IF NOT EXISTS biblio_numbers_ad AFTER DELETE ON biblios BEGIN
    INSERT INTO {SUBSTRING_INDEX} ({SUBSTRING_INDEX}, rowid, {", ".join(SUBSTRING_COLUMNS)})
    VALUES ('delete', old.biblio_id, {_OLD});
END;
CREATE TRIGGER IF NOT EXISTS biblio_numbers_au AFTER UPDATE OF {", ".join(SUBSTRING_COLUMNS)}
ON biblios BEGIN
    INSERT INTO {SUBSTRING_INDEX} ({SUBSTRING_INDEX}, rowid, {", ".join(SUBSTRING_COLUMNS)})
    VALUES ('delete', old.biblio_id, {_OLD});
    INSERT INTO {SUBSTRING_INDEX} (rowid, {", ".join(SUBSTRING_COLUMNS)})
    VALUES (new.biblio_id, {_NEW});
END;
"""


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def koha_time(at: datetime) -> str:
    """A DATETIME/TIMESTAMP column value as Koha's MySQL stores it (seconds, no zone)."""
    return at.strftime("%Y-%m-%d %H:%M:%S")


_FIELD_COLUMNS = ", ".join(f'"{c}" = ?' for c in COLUMN_SOURCES)


class CatalogStore(ItemStore):
    """Single-connection SQLite store; the emulator serves from one event loop, so no locking."""

    def __init__(self, db_path: Path | str | None) -> None:
        target = str(db_path) if db_path else ":memory:"
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        if db_path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        old = self._old_catalog()
        self._db.executescript(_SCHEMA)
        self._index_numbers()
        logged = {row[1] for row in self._db.execute("PRAGMA table_info(writes)")}
        if "payload" not in logged:  # a write log kept by an older emulator
            self._db.execute("ALTER TABLE writes ADD COLUMN payload BLOB")
        if old:
            self._restore(old)

    def _index_numbers(self) -> None:
        """Create the number index; a catalog saved before it existed is indexed once."""
        known = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (SUBSTRING_INDEX,)
        ).fetchone()
        self._db.executescript(_INDEX_SCHEMA)
        if known is None:
            self._db.execute(
                f"INSERT INTO {SUBSTRING_INDEX} ({SUBSTRING_INDEX}) VALUES ('rebuild')"
            )

    def _old_catalog(self) -> list[sqlite3.Row]:
        """A catalog saved by an emulator without Koha's columns: its rows, table dropped."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(biblios)")}
        if not columns or "timestamp" in columns:
            return []
        rows = self._db.execute(
            "SELECT biblio_id, marcxml, payload_sha256, framework_id FROM biblios"
        ).fetchall()
        self._db.execute("DROP TABLE biblios")
        self._db.execute("DROP TABLE IF EXISTS identifiers")
        return rows

    def _restore(self, rows: list[sqlite3.Row]) -> None:
        now = datetime.now(UTC)
        with self._tx():
            for row in rows:
                self._db.execute(
                    "INSERT INTO biblios (biblio_id, marcxml, payload_sha256, framework_id,"
                    ' creation_date, "timestamp") VALUES (?, ?, ?, ?, ?, ?)',
                    (
                        row["biblio_id"],
                        b"",
                        row["payload_sha256"],
                        row["framework_id"],
                        now.date().isoformat(),
                        koha_time(now),
                    ),
                )
                record = read_record(bytes(row["marcxml"]), MARCXML)
                self._save(int(row["biblio_id"]), record, now, auto_control_number=False)

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

    def _save(
        self, biblio_id: int, record: pymarc.Record, at: datetime, *, auto_control_number: bool
    ) -> None:
        """Store the record as Koha rebuilds it, with its column values."""
        marcxml = rebuild(record, biblio_id, at, auto_control_number)
        fields = biblio_fields(record)
        key = duplicate_key(fields)
        self._db.execute(
            "UPDATE biblios SET marcxml = ?, control_number = ?, control_number_source = ?,"
            f' duplicate_key = ?, {_FIELD_COLUMNS}, "timestamp" = ? WHERE biblio_id = ?',
            (
                marcxml,
                fields.control_number,
                fields.control_number_source,
                "|".join(key) if key else None,
                *(fields.columns[c] for c in COLUMN_SOURCES),
                koha_time(at),
                biblio_id,
            ),
        )

    def add_biblio(
        self,
        record: pymarc.Record,
        framework: str,
        ctx: WriteContext,
        *,
        auto_control_number: bool = False,
    ) -> int:
        at = datetime.now(UTC)
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO biblios (marcxml, payload_sha256, framework_id, creation_date,"
                ' "timestamp") VALUES (?, ?, ?, ?, ?)',
                (
                    b"",
                    sha256_hex(ctx.payload or b""),
                    framework,
                    at.date().isoformat(),
                    koha_time(at),
                ),
            )
            biblio_id = int(cur.lastrowid or 0)
            self._save(biblio_id, record, at, auto_control_number=auto_control_number)
            self._log_write(ctx, "biblio", biblio_id, 200, now_text())
        return biblio_id

    def update_biblio(self, biblio_id: int, record: pymarc.Record, ctx: WriteContext) -> bool:
        at = datetime.now(UTC)
        with self._tx():
            cur = self._db.execute(
                "UPDATE biblios SET payload_sha256 = ? WHERE biblio_id = ?",
                (sha256_hex(ctx.payload or b""), biblio_id),
            )
            if cur.rowcount == 0:
                return False
            self._save(biblio_id, record, at, auto_control_number=False)
            self._log_write(ctx, "biblio", biblio_id, 200, now_text())
        return True

    def delete_biblio(self, biblio_id: int, ctx: WriteContext) -> bool:
        now = now_text()
        with self._tx():
            cur = self._db.execute("DELETE FROM biblios WHERE biblio_id = ?", (biblio_id,))
            if cur.rowcount == 0:
                return False
            self._log_write(ctx, "biblio", biblio_id, 204, now)
        return True

    def get_biblio(self, biblio_id: int) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM biblios WHERE biblio_id = ?", (biblio_id,)
        ).fetchone()
        return row

    def count_biblios(self, where: str = "", args: list[Scalar] | None = None) -> int:
        query = f"SELECT COUNT(*) FROM biblios{where}"  # where: built by emulator.query
        return int(self._db.execute(query, args or []).fetchone()[0])

    def list_biblios(
        self, where: str, args: list[Scalar], order: str, limit: int, offset: int
    ) -> list[sqlite3.Row]:
        return list(
            self._db.execute(
                f"SELECT * FROM biblios{where}{order} LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        )

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
            " payload_sha256, status, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                ctx.method,
                ctx.path,
                resource,
                record_id,
                ctx.request_id,
                sha256_hex(ctx.payload) if ctx.payload is not None else None,
                status,
                # What the client sent, as sent: Koha's copy is rebuilt, this is the evidence.
                ctx.payload,
            ),
        )

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT seq, at, method, path, resource, record_id, request_id, payload_sha256,"
            " status FROM writes WHERE seq > ? ORDER BY seq",
            (since,),
        )
        return [dict(row) for row in rows]

    def write_total(self) -> int:
        return write_total(self._db)

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
            for table in ("items", "biblios", "writes", "fences", "sqlite_sequence"):
                self._db.execute(f"DELETE FROM {table}")  # fixed table names

    def _tx(self) -> Transaction:
        return Transaction(self._db)
