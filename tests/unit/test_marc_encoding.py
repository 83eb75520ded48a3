"""Charset detection and MARC-8 decoding against the expected UTF-8 the corpus ships."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from catalog_sync.marc.encoding import Charset, decoder_for, detect_charset
from catalog_sync.marc.errors import RecordRejected

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"
REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared")) / "corpus"


def test_every_marc8_test_line_decodes_to_its_expected_utf8_line() -> None:
    marc8 = CORPUS / "pymarc" / "test" / "test_marc8.txt"
    utf8 = CORPUS / "pymarc" / "test" / "test_utf8.txt"
    if not marc8.is_file():
        pytest.skip(f"shared corpus not present at {CORPUS}")
    decode = decoder_for(Charset.MARC8)
    sources = marc8.read_bytes().split(b"\n")
    expected = utf8.read_text(encoding="utf-8").split("\n")
    assert len(sources) == len(expected) == 1516
    for line, want in zip(sources, expected, strict=True):
        assert decode(line) == unicodedata.normalize("NFC", want)


@pytest.mark.parametrize(
    ("name", "charset", "warnings"),
    [
        ("test.dat", Charset.ASCII, ()),
        ("utf8_with_leader_flag.dat", Charset.UTF8, ()),
        ("utf8_without_leader_flag.dat", Charset.UTF8, ("leader09_marc8_but_utf8",)),
        ("marc8.dat", Charset.MARC8, ()),
        ("marc8_accented_chars.marc", Charset.MARC8, ("leader09_utf8_but_marc8",)),
    ],
)
def test_the_charset_comes_from_the_bytes_and_a_lying_flag_is_flagged(
    name: str, charset: Charset, warnings: tuple[str, ...]
) -> None:
    data = (FIXTURES / name).read_bytes().split(b"\x1d")[0] + b"\x1d"
    assert detect_charset(data, chr(data[9]), allow_utf8_repair=False) == (charset, warnings)


def test_broken_utf8_is_rejected_or_repaired_as_the_vendor_chose() -> None:
    data = (FIXTURES / "utf8_with_bad_bytes.marc").read_bytes()
    with pytest.raises(RecordRejected) as info:
        detect_charset(data, "a", allow_utf8_repair=False)
    assert info.value.reason == "invalid_utf8"
    assert detect_charset(data, "a", allow_utf8_repair=True) == (
        Charset.UTF8_REPAIRED,
        ("utf8_repaired",),
    )


def test_marc8_that_cannot_be_decoded_is_rejected_instead_of_blanked() -> None:
    sierra = (FIXTURES / "diac-4-theo-directly-from-sierra.mrc").read_bytes().split(b"\x1d")[2]
    arabic = next(
        value for value in sierra.replace(b"\x1e", b"\x1f").split(b"\x1f") if b"\x1b(3" in value
    )
    with pytest.raises(RecordRejected) as info:
        decoder_for(Charset.MARC8)(arabic)
    assert info.value.reason == "marc8_invalid"
