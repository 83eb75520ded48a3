"""Content fingerprint, version 2: sha256 of the record as canonical ISO 2709 in UTF-8.

Canonical means: directory in field order, fields back to back from the base address, and the
leader positions that depend on serialisation alone (00-04 record length, 12-16 base address)
zeroed, 09 'a' (every accepted record is UTF-8), 10-11 '22' and 20-23 '4500' (what every
writer puts there, and what pymarc's Record sets whatever it was given). A record that arrived
in exactly that layout, already NFC and needing no repair, hashes its own bytes: one sha256
call, no per-field work.
Any other record (MARCXML, MARC-8, a repaired or re-laid-out one) is serialised to that layout
first, so the same content gives the same fingerprint whichever way it came in.

The value carries its version as a prefix ("v2:" and 61 hex digits, 64 characters like the
version-1 sha256 it replaces, so it fits where those are stored). Version 1 (JSON of the
fields, catalog_sync.changes.fingerprint.record_fingerprint_v1) has no prefix.
"""

from __future__ import annotations

import hashlib

from pymarc import Record

FINGERPRINT_VERSION = 2
PREFIX = "v2:"
_DIGITS = 64 - len(PREFIX)
_LEADER_LEN = 24
_FT, _RT, _SD = b"\x1e", b"\x1d", "\x1f"


def fingerprint_version(fingerprint: str) -> int:
    """The version a stored fingerprint was made by (1: no prefix)."""
    return FINGERPRINT_VERSION if fingerprint.startswith(PREFIX) else 1


def canonical_leader(leader: str) -> bytes:
    """The leader with what only the serialisation decides zeroed or set to its fixed value."""
    text = leader.ljust(_LEADER_LEN)
    return f"00000{text[5:9]}a2200000{text[17:20]}4500".encode()


def _digest(leader: bytes, body: bytes) -> str:
    return PREFIX + hashlib.sha256(leader + body).hexdigest()[:_DIGITS]


def fingerprint_canonical_bytes(data: bytes) -> str:
    """Fingerprint of an ISO 2709 record whose bytes already are its canonical serialisation
    (catalog_sync.marc.prepare decides that while parsing; see PreparedRecord.canonical)."""
    return _digest(canonical_leader(data[:_LEADER_LEN].decode("ascii")), data[_LEADER_LEN:])


def fingerprint_record(record: Record) -> str:
    """Fingerprint of a parsed record: serialised as canonical ISO 2709, then hashed."""
    directory: list[str] = []
    fields: list[bytes] = []
    start = 0
    for field in record.fields:
        if field.control_field:
            text = field.data or ""
        else:
            text = f"{field.indicator1}{field.indicator2}" + "".join(
                [f"{_SD}{s.code}{s.value}" for s in field.subfields]
            )
        encoded = text.encode("utf-8") + _FT
        directory.append(f"{field.tag}{len(encoded):04d}{start:05d}")
        fields.append(encoded)
        start += len(encoded)
    body = "".join(directory).encode("utf-8") + _FT + b"".join(fields) + _RT
    return _digest(canonical_leader(str(record.leader)), body)
