"""The emulator's items (Koha's items table) and what every write shares: its context, time."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def write_total(db: sqlite3.Connection) -> int:
    """How many writes the log holds, without counting them.

    The log is append-only (a reset empties it) and its AUTOINCREMENT key never skips or
    reuses a value, so its rows are exactly the keys MIN..MAX. Each bound is one B-tree
    descent; COUNT(*) read every row, and a benchmark polling the counters ten times a second
    against a 250,000-write log kept the emulator's one thread busy doing only that.
    """
    row = db.execute(
        "SELECT (SELECT MAX(seq) FROM writes) - (SELECT MIN(seq) FROM writes) + 1"
    ).fetchone()
    return int(row[0] or 0)


@dataclass(frozen=True)
class WriteContext:
    """Who asked for a write: logged with it (the request body too, for audits and tests)."""

    method: str
    path: str
    request_id: str | None
    payload: bytes | None


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT so a write and its log entry land together or not at all.

    Shared by the Koha and FOLIO stores, which keep their catalogs in SQLite the same way.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


class ItemStore:
    """The items part of CatalogStore (which provides the connection, transactions, write log)."""

    _db: sqlite3.Connection

    def _tx(self) -> Transaction:
        raise NotImplementedError

    def _log_write(
        self, ctx: WriteContext, resource: str, record_id: int, status: int, at: str
    ) -> None:
        raise NotImplementedError

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
        now = now_text()
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO items (biblio_id, external_id, body) VALUES (?, ?, ?)",
                (biblio_id, body.get("external_id"), json.dumps(body)),
            )
            item_id = int(cur.lastrowid or 0)
            self._log_write(ctx, "item", item_id, 201, now)
        return self.get_item(item_id) or {}

    def update_item(self, item_id: int, body: dict[str, Any], ctx: WriteContext) -> dict[str, Any]:
        now = now_text()
        with self._tx():
            self._db.execute(
                "UPDATE items SET external_id = ?, body = ? WHERE item_id = ?",
                (body.get("external_id"), json.dumps(body), item_id),
            )
            self._log_write(ctx, "item", item_id, 200, now)
        return self.get_item(item_id) or {}

    def delete_item(self, item_id: int, ctx: WriteContext) -> bool:
        now = now_text()
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
