"""Stored fingerprints of an older fingerprint version: compared on that version's terms, then
replaced by the current version's, so changing how fingerprints are made costs no ILS write.

The state store keeps one fingerprint per record key; the value says which version made it
(catalog_sync.marc.fastprint.fingerprint_version). A record whose stored fingerprint is older
is re-read from the chunk and fingerprinted the old way once; equal means unchanged, and the
stored value is swapped for the current one (only where it still holds the old value, so a
write acknowledged meanwhile is never overwritten).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import Connection, bindparam

from catalog_sync.changes.fingerprint import record_fingerprint_v1
from catalog_sync.changes.state.ops import Op
from catalog_sync.changes.state.schema import catalog_records
from catalog_sync.config import VendorConfig
from catalog_sync.marc.fastprint import FINGERPRINT_VERSION, fingerprint_version
from catalog_sync.marc.prepare import PreparedRecord, prepare_record
from catalog_sync.marc.reader import RawRecord, read_record_at
from catalog_sync.models import ChunkRef


class Rebaseline(NamedTuple):
    """A stored fingerprint made by an older version, and today's for the same content."""

    record_key: str
    stored: str
    current: str


def is_outdated(fingerprint: str) -> bool:
    return fingerprint_version(fingerprint) != FINGERPRINT_VERSION


def same_as_stored(
    ref: ChunkRef, offset: int, length: int, vendor: VendorConfig, stored: str
) -> bool:
    """Whether the record at `offset` has the content an older version fingerprinted `stored`.

    Version 1 is the only older one. The record is read and prepared again, as commit_chunk
    does, rather than kept from the first pass: this happens once per record per upgrade.
    """
    raw = RawRecord(offset, read_record_at(ref.file_path, offset, length), ordinal=0)
    prepared = prepare_record(raw, ref.format, vendor)
    return isinstance(prepared, PreparedRecord) and record_fingerprint_v1(prepared.record) == stored


def store_current(ils: str, rows: Sequence[Rebaseline]) -> Op[int]:
    """Swap each stored older fingerprint for the current one, where it is still the stored one."""
    c = catalog_records.c
    stmt = (
        catalog_records.update()
        .where(
            c.ils == ils,
            c.record_key == bindparam("key"),
            c.fingerprint == bindparam("stored"),
        )
        .values(fingerprint=bindparam("current"))
    )
    params = [{"key": r.record_key, "stored": r.stored, "current": r.current} for r in rows]

    def run(conn: Connection) -> int:
        if not params:
            return 0
        return int(conn.execute(stmt, params).rowcount or 0)

    return Op(run, writes=True)
