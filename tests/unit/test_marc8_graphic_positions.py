"""MARC-8 sets decode in whichever graphic position, G0 or G1, they are designated (issue 15, 3)."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from pymarc.marc8_mapping import CODESETS

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.marc8 import marc8_to_unicode

_G0_ESCAPES = (b"\x1b(", b"\x1b,")
_G1_ESCAPES = (b"\x1b)", b"\x1b-")
_MB_G0_ESCAPES = (b"\x1b$", b"\x1b$,")
_MB_G1_ESCAPES = (b"\x1b$)", b"\x1b$-")
_TECHNIQUE1 = {0x62, 0x67, 0x70}  # subscripts, Greek symbols, superscripts: ESC F only


def _in_position(code: int, g1: bool, width: int) -> bytes:
    """The bytes of a table code as they stand in G0 (high bit clear) or G1 (high bit set)."""
    return bytes((b | 0x80) if g1 else (b & 0x7F) for b in code.to_bytes(width, "big"))


@pytest.mark.parametrize("final", sorted(set(CODESETS) - _TECHNIQUE1))
def test_every_marc8_set_decodes_in_both_positions_with_both_escapes(final: int) -> None:
    """Every character of every set, designated G0 and G1, each with both escape forms."""
    width = 3 if final == 0x31 else 1
    forms = (
        ((False, _MB_G0_ESCAPES), (True, _MB_G1_ESCAPES))
        if width == 3
        else (
            (False, _G0_ESCAPES),
            (True, _G1_ESCAPES),
        )
    )
    checked = 0
    for (g1, escapes), (code, (uni, combining)) in itertools.product(
        forms, CODESETS[final].items()
    ):
        low = [b & 0x7F for b in code.to_bytes(width, "big")]
        if any(b < 0x21 or b == 0x7F for b in low):
            continue  # control bytes and DEL are not graphic characters of any position
        for escape in escapes:
            # The character, then Basic Latin back in G0 and a base letter "a" from it.
            value = escape + bytes([final]) + _in_position(code, g1, width) + b"\x1b(Ba"
            # MARC-8 puts a combining mark before its base letter, Unicode after it.
            expected = "a" + chr(uni) if combining else chr(uni) + "a"
            assert marc8_to_unicode(value) == unicodedata.normalize("NFC", expected), (
                hex(final),
                hex(code),
                escape,
            )
            checked += 1
    assert checked >= 4 * (len(CODESETS[final]) - 8)


@pytest.mark.parametrize("final", sorted(_TECHNIQUE1))
def test_technique_one_sets_decode_until_escape_s(final: int) -> None:
    for code, (uni, _) in CODESETS[final].items():
        assert marc8_to_unicode(b"x\x1b" + bytes([final, code]) + b"\x1bsx") == f"x{chr(uni)}x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\xa1\xb1\xe2e", "\u0141\u0142\u00e9"),  # Extended Latin (ANSEL), the default G1
        (b"\x1b(!E\x21\x1b(B", "\u0141"),  # ANSEL designated G0: 0x21 is its 0xA1
        (b"\x1b(N\x41\x61\x1b(B", "\u0430\u0410"),  # Basic Cyrillic G0: small a, capital A
        (b"\x1b)N\xc1", "\u0430"),  # Basic Cyrillic G1
        (b"\x1b(Q\x40\x1b(B", "\u0491"),  # Extended Cyrillic G0: small ghe with upturn
        (b"\x1b)Q\xe0", "\u0490"),  # Extended Cyrillic G1: capital ghe with upturn
        (b"\x1b(2\x60\x1b(B", "\u05d0"),  # Basic Hebrew G0: alef
        (b"\x1b)2\xe0", "\u05d0"),  # Basic Hebrew G1
        (b"\x1b(3\x47\x1b(B", "\u0627"),  # Basic Arabic G0: alef
        (b"\x1b)3\xc7", "\u0627"),  # Basic Arabic G1
        (b"\x1b$1\x21\x30\x21\x1b(B", "\u4e00"),  # EACC G0: 0x213021 is "one"
        (b"\x1b$)1\xa1\xb0\xa1", "\u4e00"),  # EACC G1
        (b"\x1bp0\x1bs", "\u2070"),  # superscript zero (technique 1)
        (b"\x1bb0\x1bs", "\u2080"),  # subscript zero
        (b"\x1bga\x1bs", "\u03b1"),  # Greek symbol alpha
    ],
)
def test_characters_decode_as_the_loc_code_tables_list_them(value: bytes, expected: str) -> None:
    # Read off the Library of Congress MARC-8 code tables, independently of pymarc's data.
    assert marc8_to_unicode(value) == expected


def test_extended_cyrillic_designated_as_g0_decodes() -> None:
    # LoC Extended Cyrillic 0x40/0xC0 is CYRILLIC SMALL LETTER GHE WITH UPTURN (U+0491):
    # the same letter whether the set is designated G1 (ESC ) Q, byte 0xC0) or G0 (ESC ( Q,
    # byte 0x40). Before issue 15 the G0 form decoded to nothing and the record was rejected.
    assert marc8_to_unicode(b"\x1b(Q\x40\x1b(B") == "\u0491"
    assert marc8_to_unicode(b"\x1b,Q\x40\x1b(B") == "\u0491"
    assert marc8_to_unicode(b"\x1b)Q\xc0") == "\u0491"
    # Basic Cyrillic as G1: 0x41/0xC1 is CYRILLIC SMALL LETTER A.
    assert marc8_to_unicode(b"\x1b)N\xc1") == "\u0430"


def test_an_unknown_escape_sequence_rejects_instead_of_dropping_a_character() -> None:
    with pytest.raises(RecordRejected) as info:
        marc8_to_unicode(b"Soci\x1bt\xe2e")
    assert info.value.reason == "marc8_invalid"
