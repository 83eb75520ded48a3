"""Koha's list filtering (`q`, `query` body, `x-koha-query`, `_order_by`) as SQL for the store.

Koha passes these JSON queries to DBIx::Class (SQL::Abstract syntax) over the biblio and
biblioitems columns: {"col": "v"} is equality, {"col": {"-like": "Ace%"}} and the comparison
operators filter, a hash is AND, an array is OR, `-and`/`-or` nest. Several sources are ANDed.
Only the columns in records.COLUMNS exist; MARC 001/003/035 are not among them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from catalog_sync.emulator.records import COLUMNS

_COMPARE = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_LIKE = {"-like": "LIKE", "like": "LIKE", "-not_like": "NOT LIKE", "not_like": "NOT LIKE"}
_IN = {"-in": "IN", "in": "IN", "-not_in": "NOT IN", "not_in": "NOT IN"}
MATCH_VALUES = ("contains", "exact", "starts_with", "ends_with")
# Standard-number columns the store also keeps in an FTS5 trigram index (store.py), so that a
# `-like` substring search (the adapter's match look-ups) need not scan every biblio: ~1.7 s
# per batch of 80 patterns at 250,000 biblios, ~0.1 s through the index. The index only
# narrows the rows; each row is still tested with the column's own LIKE, so the answers are
# the ones a scan (and Koha's MySQL) gives. Koha itself scans here: speed, not semantics.
SUBSTRING_INDEX = "biblio_numbers"
SUBSTRING_COLUMNS = ("isbn", "issn", "lc_control_number")
_INDEXED = frozenset(f'"{c}"' for c in SUBSTRING_COLUMNS)

Scalar = str | int | float


class QueryError(ValueError):
    """A query Koha would refuse; `path` names the parameter (/query/q, /header/...)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def parse_sources(q_values: list[str], header: str | None, body: bytes) -> list[Any]:
    """Every query the request carries (q params, x-koha-query header, JSON body), parsed."""
    sources: list[tuple[str, str]] = [("/query/q", v) for v in q_values]
    if header:
        sources.append(("/header/x-koha-query", header))
    if body.strip():
        sources.append(("/body", body.decode("utf-8", errors="replace")))
    parsed: list[Any] = []
    for path, text in sources:
        try:
            parsed.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise QueryError("Malformed query string", path) from exc
    return parsed


def where_clause(queries: list[Any]) -> tuple[str, list[Scalar]]:
    """`" WHERE ..."` (or "") and its bound values: the queries ANDed."""
    args: list[Scalar] = []
    parts = [_node(q, args) for q in queries]
    parts = [p for p in parts if p]
    if not parts:
        return "", []
    return " WHERE " + " AND ".join(f"({p})" for p in parts), args


def _column(name: str) -> str:
    bare = name[3:] if name.startswith("me.") else name
    if bare not in COLUMNS:
        raise QueryError(f"Unknown column {name!r}", "/query/q")
    return f'"{bare}"'


def _node(node: Any, args: list[Scalar]) -> str:
    if isinstance(node, list):
        parts = [p for p in (_node(n, args) for n in node) if p]
        return " OR ".join(f"({p})" for p in parts) if parts else "0"
    if not isinstance(node, dict):
        raise QueryError("A query is an object or an array of objects", "/query/q")
    parts = []
    for key, value in node.items():
        if key in ("-and", "-or"):
            items = value if isinstance(value, list) else [{k: v} for k, v in value.items()]
            inner = [p for p in (_node(i, args) for i in items) if p]
            if inner:
                glue = " AND " if key == "-and" else " OR "
                parts.append(glue.join(f"({p})" for p in inner))
            continue
        parts.append(_condition(_column(key), value, args))
    return " AND ".join(f"({p})" for p in parts)


# Koha's API gives and takes date-times as RFC 3339 (Koha::Object::attributes_from_api); the
# emulator insists on it (stricter) and compares in UTC, as it stores them.
_DATETIME_COLUMNS = frozenset({'"timestamp"'})


def _scalar(value: Any, column: str = "") -> Scalar:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise QueryError("Expected a string or a number", "/query/q")
    if column in _DATETIME_COLUMNS:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise QueryError(f"Not an RFC 3339 date-time: {value!r}", "/query/q") from exc
        if "T" not in str(value) or when.tzinfo is None:
            raise QueryError(f"Not an RFC 3339 date-time: {value!r}", "/query/q")
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value


def _condition(column: str, value: Any, args: list[Scalar]) -> str:
    if value is None:
        return f"{column} IS NULL"
    if isinstance(value, list):  # an array of values or conditions: OR
        if not value:
            return "0"
        return " OR ".join(f"({_condition(column, v, args)})" for v in value)
    if not isinstance(value, dict):
        args.append(_scalar(value, column))
        return f"{column} = ?"
    parts = []
    for op, operand in value.items():
        if op in _COMPARE:
            if operand is None:
                parts.append(f"{column} IS {'NOT ' if op != '=' else ''}NULL")
                continue
            args.append(_scalar(operand, column))
            parts.append(f"{column} {_COMPARE[op]} ?")
        elif op in _LIKE:
            pattern = str(_scalar(operand))
            like = f"{column} {_LIKE[op]} ? ESCAPE '\\'"
            # FTS5 is not consulted for a LIKE with ESCAPE, so only a pattern with nothing to
            # escape is narrowed through the index (the client's number patterns never have).
            if column in _INDEXED and _LIKE[op] == "LIKE" and "\\" not in pattern:
                narrow = f"biblio_id IN (SELECT rowid FROM {SUBSTRING_INDEX} WHERE {column} LIKE ?)"
                args.extend((pattern, pattern))
                parts.append(f"{narrow} AND {like}")
            else:
                args.append(pattern)
                parts.append(like)
        elif op in _IN:
            if not isinstance(operand, list) or not operand:
                raise QueryError(f"{op} takes a non-empty array", "/query/q")
            args.extend(_scalar(v, column) for v in operand)
            parts.append(f"{column} {_IN[op]} ({', '.join('?' * len(operand))})")
        else:
            raise QueryError(f"Unknown operator {op!r}", "/query/q")
    return " AND ".join(f"({p})" for p in parts)


def order_clause(values: list[str]) -> str:
    """`_order_by` (csv, repeatable): +col / -col / col, then biblio_id for a stable order."""
    terms = []
    for raw in values:
        for item in filter(None, (v.strip() for v in raw.split(","))):
            direction = "DESC" if item.startswith("-") else "ASC"
            name = item.lstrip("+-")
            try:
                terms.append(f"{_column(name)} {direction}")
            except QueryError as exc:
                raise QueryError(str(exc), "/query/_order_by") from exc
    return " ORDER BY " + ", ".join([*terms, '"biblio_id" ASC'])
