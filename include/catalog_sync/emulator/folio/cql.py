"""The CQL an adapter sends to inventory storage, compiled to SQL (RMB's cql2pgjson, in small).

Supported: `index==value`, `index=value`, `index==(v1 or v2 ...)` (a value list under one
index, as FOLIO clients send ids), `_version==/number n`, `identifiers =/@value v`,
`identifiers =/@identifierTypeId=<uuid> v`, `cql.allRecords=1`, joined by `and` / `or` /
`not` (equal precedence, left to right, as CQL has it) with parentheses. Anything else is
refused with a 400, as RMB refuses what its index definitions cannot serve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|==|=|/@[A-Za-z]+(?:=[^\s/()"]+)?|/number\b|[^\s()"=/]+)'
)
# Per kind: CQL index -> column of the emulator's entity table.
INDEXES: dict[str, dict[str, str]] = {
    "instance": {"id": "id", "hrid": "hrid"},
    "holdings_record": {"id": "id", "hrid": "hrid", "instanceId": "parent_id"},
    "item": {"id": "id", "hrid": "hrid", "holdingsRecordId": "parent_id", "barcode": "barcode"},
}


class CQLError(ValueError):
    """A query the emulator (like RMB for these indexes) cannot run: answered 400."""


@dataclass(frozen=True)
class Compiled:
    where: str
    args: tuple[object, ...]
    # What an `or` run may fold into one indexed lookup (see _join): an equality on one
    # column, or a one-word identifier match under given type ids.
    equals: tuple[str, object] | None = None
    word: tuple[tuple[str, ...], str] | None = None


def identifier_tokens(value: str) -> list[str]:
    """Full-text words of an identifier value (PostgreSQL 'simple' config, lower-cased)."""
    return [t for t in re.split(r"[\s(),;:\[\]]+", value.lower()) if t]


def compile_cql(kind: str, query: str) -> Compiled:
    tokens = _tokenize(query)
    parser = _Parser(kind, tokens)
    compiled = parser.query()
    if parser.pos != len(tokens):
        raise CQLError(f"unexpected {tokens[parser.pos]!r} at token {parser.pos}")
    return compiled


def _tokenize(query: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        match = _TOKEN.match(query, pos)
        if match is None:
            raise CQLError(f"cannot read the query at character {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, kind: str, tokens: list[str]) -> None:
        self.kind = kind
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise CQLError("query ends too early")
        self.pos += 1
        return token

    def query(self) -> Compiled:
        # A run of one operator becomes one flat group: SQLite's parser refuses the deep
        # nesting that 500 left-associated `or`s would give.
        parts = [self.term()]
        run_op: str | None = None
        while (op := (self._peek() or "").lower()) in ("and", "or", "not"):
            self.pos += 1
            if run_op is not None and op != run_op:
                parts = [_join(parts, run_op)]
            run_op = op
            parts.append(self.term())
        return _join(parts, run_op) if run_op else parts[0]

    def term(self) -> Compiled:
        if self._peek() == "(":
            self.pos += 1
            inner = self.query()
            if self._take() != ")":
                raise CQLError("missing )")
            return inner
        index = self._take()
        relation = self._take()
        if relation not in ("=", "=="):
            raise CQLError(f"unsupported relation {relation!r} after {index!r}")
        if self._peek() == "/number":
            self.pos += 1
            return self._number(index, relation)
        modifiers: list[str] = []
        while (self._peek() or "").startswith("/@"):
            modifiers.append(self._take()[2:])
        if self._peek() == "(" and relation == "==" and not modifiers:
            return self._value_list(index)
        value = _unquote(self._take())
        if index == "cql.allRecords" and value == "1" and not modifiers:
            return Compiled("1 = 1", ())
        if index == "identifiers" and self.kind == "instance" and relation == "=":
            return _identifiers(modifiers, value)
        column = INDEXES.get(self.kind, {}).get(index)
        if column is None or modifiers:
            raise CQLError(f"no index {index!r}{''.join('/@' + m for m in modifiers)}")
        if column == "barcode":  # the item barcode index is case-insensitive (schema.json)
            value = value.lower()
        return Compiled(f"{column} = ?", (value,), equals=(column, value))

    def _value_list(self, index: str) -> Compiled:
        """`index==(v1 or v2 ...)`: plain values joined by `or` only, each `index==v`."""
        self.pos += 1
        column = INDEXES.get(self.kind, {}).get(index)
        if column is None:
            raise CQLError(f"no index {index!r}")
        values: list[object] = []
        while True:
            token = self._take()
            if token in ("(", ")", "=", "==") or token.startswith("/"):
                raise CQLError(f"unexpected {token!r} in the value list of {index!r}")
            value = _unquote(token)
            values.append(value.lower() if column == "barcode" else value)
            token = self._take()
            if token == ")":
                break
            if token.lower() != "or":
                raise CQLError(f"only `or` joins the value list of {index!r}, not {token!r}")
        return Compiled(f"{column} IN ({', '.join('?' * len(values))})", tuple(values))

    def _number(self, index: str, relation: str) -> Compiled:
        """`_version==/number n`: RMB keeps `_version` a JSON number; only it is numeric here."""
        if index != "_version" or relation != "==":
            raise CQLError(f"unsupported /number match on {index!r}")
        raw = _unquote(self._take())
        try:
            number = int(raw)
        except ValueError as exc:
            raise CQLError(f"{raw!r} is not a number") from exc
        return Compiled("version = ?", (number,))


def _join(parts: list[Compiled], op: str) -> Compiled:
    if op == "or":
        parts = _fold_or(parts)
    sql = {"and": " AND ", "or": " OR ", "not": " AND NOT "}[op]
    args = tuple(a for part in parts for a in part.args)
    return Compiled("(" + sql.join(part.where for part in parts) + ")", args)


def _fold_or(parts: list[Compiled]) -> list[Compiled]:
    """`id=="a" or id=="b"` -> `id IN (?, ?)`; one-word identifier matches of the same types ->
    one subquery. An index then serves the whole run, as PostgreSQL's does for FOLIO, where
    hundreds of OR-ed subqueries would make SQLite test each against every row."""
    columns: dict[str, list[object]] = {}
    words: dict[tuple[str, ...], list[str]] = {}
    rest: list[Compiled] = []
    for part in parts:
        if part.equals is not None:
            columns.setdefault(part.equals[0], []).append(part.equals[1])
        elif part.word is not None:
            words.setdefault(part.word[0], []).append(part.word[1])
        else:
            rest.append(part)
    for column, values in columns.items():
        rest.append(Compiled(f"{column} IN ({', '.join('?' * len(values))})", tuple(values)))
    for type_ids, found in words.items():
        sub = "SELECT instance_id FROM identifiers WHERE word IN (" + ", ".join("?" * len(found))
        sub += ")" + "".join(" AND type_id = ?" for _ in type_ids)
        rest.append(Compiled(f"id IN ({sub})", (*found, *type_ids)))
    return rest


def _identifiers(modifiers: list[str], value: str) -> Compiled:
    """`identifiers` is a full-text index on value with the identifierTypeId modifier."""
    type_ids: list[str] = []
    for modifier in modifiers:
        name, _, arg = modifier.partition("=")
        if name.lower() == "value" and not arg:
            continue
        if name.lower() == "identifiertypeid" and arg:
            type_ids.append(arg)
            continue
        raise CQLError(f"unsupported relation modifier /@{modifier}")
    words = identifier_tokens(value)
    if not words:
        raise CQLError("empty identifier term")
    clauses = [f"word IN ({', '.join('?' * len(words))})"]
    args: list[object] = list(words)
    for type_id in type_ids:
        clauses.append("type_id = ?")
        args.append(type_id)
    # Every word in one and the same identifier entry, as a full-text match on it would need.
    sub = (
        "SELECT instance_id FROM identifiers WHERE "
        + " AND ".join(clauses)
        + " GROUP BY instance_id, entry HAVING COUNT(DISTINCT word) = ?"
    )
    args.append(len(set(words)))
    single = (tuple(type_ids), words[0]) if len(set(words)) == 1 else None
    return Compiled(f"id IN ({sub})", tuple(args), word=single)


def _unquote(token: str) -> str:
    # An unescaped `*`, `?` or `^` is CQL masking (truncation, anchoring), which RMB runs as
    # a pattern: taken literally here it would match less than FOLIO does, and a CQL delete
    # would then delete less without saying so. Refused instead.
    if re.search(r"(?<!\\)(?:\\\\)*[*?^]", token):
        raise CQLError(f"masking characters are not supported: {token}")
    if token.startswith('"'):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token
