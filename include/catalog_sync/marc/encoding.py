"""Which character set a record's bytes are really in, whatever leader/09 claims, and decoding."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from pymarc.marc8_mapping import CODESETS

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.marc8 import marc8_to_unicode
from catalog_sync.marc.reasons import RecordWarning, RejectReason

_ESC = 0x1B
# High-bit bytes MARC-8's default G1 set (ANSEL, final 0x45) defines; any other high byte in a
# record without escape sequences means a legacy code page (cp1251, cp866, ...), not MARC-8.
_ANSEL_HIGH = frozenset(k for k in CODESETS[0x45] if k >= 0x80)


class Charset(StrEnum):
    ASCII = "ascii"
    UTF8 = "utf-8"
    UTF8_REPAIRED = "utf-8-repaired"
    MARC8 = "marc-8"


def _marc8_plausible(data: bytes) -> bool:
    if _ESC in data:
        return True  # escape sequences switch sets; the converter judges those bytes
    return all(b in _ANSEL_HIGH for b in data if b >= 0x80)


def detect_charset(
    data: bytes, leader09: str, allow_utf8_repair: bool
) -> tuple[Charset, tuple[str, ...]]:
    """The charset of the record bytes, with warnings when leader/09 lies.

    Rules: pure ASCII without escapes is ASCII whatever the flag. Valid UTF-8 with high-bit bytes
    is UTF-8 even when leader/09 says MARC-8 (flagged). Bytes that are not valid UTF-8 are MARC-8
    when ANSEL explains every high byte, even when leader/09 says UTF-8 (flagged). Otherwise: with
    leader/09 'a' they are broken UTF-8 (rejected, or repaired with U+FFFD when the vendor allows),
    without it an unknown legacy code page (rejected: guessing would corrupt the catalogue).
    """
    if data.isascii():
        if _ESC in data and leader09 != "a":
            return Charset.MARC8, ()  # G0 switches (Greek, Cyrillic, CJK) use only ASCII bytes
        return Charset.ASCII, ()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    else:
        return Charset.UTF8, (
            () if leader09 == "a" else (RecordWarning.LEADER09_SAYS_MARC8_BYTES_UTF8,)
        )
    if _marc8_plausible(data):
        return Charset.MARC8, (
            (RecordWarning.LEADER09_SAYS_UTF8_BYTES_MARC8,) if leader09 == "a" else ()
        )
    if leader09 == "a":
        if allow_utf8_repair:
            return Charset.UTF8_REPAIRED, (RecordWarning.UTF8_REPAIRED,)
        raise RecordRejected(RejectReason.INVALID_UTF8, f"invalid UTF-8 at record byte {bad_at}")
    raise RecordRejected(
        RejectReason.UNKNOWN_CHARSET,
        f"high-bit bytes are neither UTF-8 nor MARC-8 (first bad byte at {bad_at})",
    )


def decoder_for(charset: Charset) -> Callable[[bytes], str]:
    """bytes -> str for one field or subfield value of a record in `charset`."""
    if charset is Charset.ASCII:
        return _decode_ascii
    if charset is Charset.UTF8:
        return _decode_utf8
    if charset is Charset.UTF8_REPAIRED:
        return _decode_utf8_repair
    # A fresh decoder state per value: MARC-8 escape state must not leak between subfields.
    return marc8_to_unicode


def _decode_ascii(value: bytes) -> str:
    return value.decode("ascii")


def _decode_utf8(value: bytes) -> str:
    return value.decode("utf-8")


def _decode_utf8_repair(value: bytes) -> str:
    return value.decode("utf-8", "replace")
