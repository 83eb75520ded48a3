"""MARC-8 to Unicode, with each character set decoded in whichever graphic position holds it.

The character tables are pymarc's `marc8_mapping` (data transcribed from the Library of Congress
MARC-8 code tables). pymarc keys each table by the bytes of the position a set is usually
designated to: Basic Cyrillic by G0 bytes (0x21-0x7E), Extended Cyrillic by G1 bytes
(0xA1-0xFE). MARC-8 lets any set be designated as G0 (`ESC ( F`, `ESC , F`) or G1 (`ESC ) F`,
`ESC - F`), the multibyte CJK set too (`ESC $ F`, `ESC $ , F`, `ESC $ ) F`, `ESC $ - F`).
A set's character is the same in either position; only the high bit of its bytes differs.
So a byte is looked up in the set designated for its position, with the high bit as that set's
table has it.
"""

from __future__ import annotations

import unicodedata

from pymarc.marc8_mapping import CODESETS, ODD_MAP

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.reasons import RejectReason

ESC = 0x1B
BASIC_LATIN = 0x42
ANSEL = 0x45
CJK = 0x31
# Technique 1 (ESC F, no intermediate): Greek symbols, subscripts, superscripts as G0;
# ESC s returns G0 to Basic Latin.
_TECHNIQUE1 = frozenset({0x67, 0x62, 0x70})
_RETURN_TO_ASCII = 0x73
# Intermediates: G0 single-byte, G1 single-byte. "!" before a final (ESC ) ! E) is the
# Extended Latin (ANSEL) designation's second intermediate.
_G0 = frozenset(b"(,")
_G1 = frozenset(b")-")
_MULTIBYTE = 0x24  # "$"
_SECOND_INTERMEDIATE = 0x21  # "!"


def _invalid(detail: str) -> RecordRejected:
    return RecordRejected(RejectReason.MARC8_INVALID, detail)


def _escape(data: bytes, pos: int) -> tuple[int, int, int]:
    """(position 0 or 1, final byte, next pos) of the escape sequence at data[pos]."""
    i = pos + 1
    nxt = data[i] if i < len(data) else -1
    if nxt in _TECHNIQUE1 or nxt == _RETURN_TO_ASCII:
        return 0, BASIC_LATIN if nxt == _RETURN_TO_ASCII else nxt, i + 1
    if nxt == _MULTIBYTE:
        i += 1
        graphic = 0
        if i < len(data) and data[i] in b"(,)-":
            graphic = 1 if data[i] in _G1 else 0
            i += 1
    elif nxt in _G0 or nxt in _G1:
        graphic = 1 if nxt in _G1 else 0
        i += 1
        if i < len(data) and data[i] == _SECOND_INTERMEDIATE:
            i += 1
    else:
        raise _invalid(f"unknown MARC-8 escape sequence at value byte {pos}")
    if i >= len(data) or data[i] not in CODESETS:
        raise _invalid(f"MARC-8 escape sequence at value byte {pos} names no known set")
    return graphic, data[i], i + 1


def _lookup(charset: int, code: int) -> tuple[int, bool] | None:
    """(code point, combining) of `code` in `charset`, in whichever position it sits."""
    table = CODESETS[charset]
    found = table.get(code)
    if found is None:
        if charset == CJK:
            # Each of the three bytes carries the position's high bit.
            found = table.get(code ^ 0x808080) if code & 0x808080 else table.get(code | 0x808080)
        else:
            found = table.get(code ^ 0x80)
    if found is None:
        odd = ODD_MAP.get(code)
        return (odd, False) if odd is not None else None
    return found[0], bool(found[1])


def marc8_to_unicode(data: bytes) -> str:
    """One MARC-8 field or subfield value as NFC text; raises RecordRejected (marc8_invalid)
    for an escape sequence or character the MARC-8 tables do not define.

    Each value starts with Basic Latin as G0 and Extended Latin as G1 (MARC 21's default).
    C0 control bytes other than ESC pass through (the caller removes them with a warning).
    """
    g = [BASIC_LATIN, ANSEL]
    out: list[str] = []
    combining: list[str] = []
    pos = 0
    n = len(data)
    while pos < n:
        byte = data[pos]
        if byte == ESC:
            graphic, final, pos = _escape(data, pos)
            g[graphic] = final
            continue
        if byte < 0x20:
            out.append(chr(byte))
            pos += 1
            continue
        graphic = 1 if byte >= 0x80 else 0
        charset = g[graphic]
        if byte == 0x20:
            # A single-byte space whatever G0 holds (even CJK, whose lead bytes start at 0x21);
            # pymarc's non-Latin tables leave it out. It is a base for combining marks too.
            found: tuple[int, bool] | None = (0x20, False)
            width = 1
        elif charset == CJK:
            if pos + 3 > n:
                raise _invalid(f"MARC-8 multibyte character cut short at value byte {pos}")
            code = int.from_bytes(data[pos : pos + 3], "big")
            width = 3
            found = _lookup(charset, code)
        else:
            width = 1
            found = _lookup(charset, byte)
        if found is None:
            raise _invalid(
                f"byte(s) {data[pos : pos + width].hex()} at value byte {pos} are not in "
                f"MARC-8 set 0x{charset:02X}"
            )
        pos += width
        char = chr(found[0])
        if found[1]:
            combining.append(char)  # MARC-8 puts a combining mark before its base letter
            continue
        out.append(char)
        if combining:
            out.extend(combining)
            combining.clear()
    out.extend(combining)
    text = "".join(out)
    return text if text.isascii() else unicodedata.normalize("NFC", text)
