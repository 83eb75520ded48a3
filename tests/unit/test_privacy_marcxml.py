"""Masking raw MARCXML record spans for reject files, well-formed or not."""

from __future__ import annotations

import io
import os
import re
import secrets
from pathlib import Path

import pytest
from pymarc import Record, parse_xml_to_array, record_to_xml
from tests.privacy_canaries import plant_canaries

from catalog_sync.privacy import Masker, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("CATALOG_SYNC_SHARED", REPO.parent / "shared"))


@pytest.fixture
def masker() -> Masker:
    return Masker(load_policy(), secrets.token_bytes(32))


def read_xml(data: bytes) -> list[Record]:
    return [r for r in parse_xml_to_array(io.BytesIO(data), strict=False) if r is not None]


def record_span(data: bytes) -> bytes:
    """The `<record>...</record>` bytes, as the MARCXML framing hands one record over."""
    m = re.search(rb"<record\b.*?</record>", data, re.S)
    assert m is not None
    return m.group()


def planted_span() -> tuple[bytes, list[str], Record]:
    (record,) = read_xml((FIXTURES / "alma_item_876.xml").read_bytes())
    (planted,), canaries = plant_canaries([record])
    return record_to_xml(planted), list(canaries), planted


def leaks(data: bytes, canaries: list[str]) -> list[str]:
    return [c for c in canaries if c.encode() in data]


def test_masked_span_holds_no_canary_and_matches_record_masking(masker: Masker) -> None:
    span, canaries, planted = planted_span()
    assert leaks(span, canaries) == canaries

    masked = masker.mask_raw_marcxml(span)

    assert leaks(masked, canaries) == []
    (from_raw,) = read_xml(b"<collection>" + masked + b"</collection>")
    expected = masker.mask_record(planted)
    assert [str(f) for f in from_raw.fields] == [str(f) for f in expected.fields]
    assert str(from_raw.leader) == str(expected.leader)


def test_a_span_whose_namespace_prefix_is_declared_elsewhere_is_still_masked(
    masker: Masker,
) -> None:
    span, canaries, _ = planted_span()
    prefixed = re.sub(
        rb"<(/?)(record|leader|controlfield|datafield|subfield)\b", rb"<\1marc:\2", span
    )
    masked = masker.mask_raw_marcxml(prefixed)
    assert leaks(masked, canaries) == []
    assert b"<marc:datafield" in masked and b"[redacted]" in masked


def not_well_formed_with_pii() -> tuple[bytes, list[str]]:
    span = record_span((FIXTURES / "scsb_not_well_formed.xml").read_bytes())
    canaries = ["QZCANARY00001Q", "canary.00002@example.org", "29990000000037"]
    inserted = (
        f'<subfield code="c">{canaries[0]}</subfield>\n'
        f'<subfield code="x">Call {canaries[1]} re card {canaries[2]}</subfield>\n'
    ).encode()
    planted = span.replace(b'<subfield code="t">1</subfield>\n', inserted + b"</datafield>", 1)
    assert all(c.encode() in planted for c in canaries)
    return planted, canaries


def test_not_well_formed_xml_is_masked_by_its_markup(masker: Masker) -> None:
    planted, canaries = not_well_formed_with_pii()
    masked = masker.mask_raw_marcxml(planted)
    assert leaks(masked, canaries) == []
    assert b"Aliens & anorexia /" in masked  # untouched text stays byte for byte, bad '&' too
    assert b'<subfield code="x">[redacted]</subfield>' in masked
    assert re.search(rb'<subfield code="c">hmac:[0-9a-f]{16}</subfield>', masked)
    assert masker.counts["item-cost"] == 1 and masker.counts["item-nonpublic-note"] == 1


def test_a_span_cut_inside_a_subfield_still_loses_its_pii(masker: Masker) -> None:
    planted, canaries = not_well_formed_with_pii()
    cut = planted[: planted.index(canaries[2].encode()) + len(canaries[2])]
    masked = masker.mask_raw_marcxml(cut)
    assert leaks(masked, canaries) == []
    assert masked.endswith(b"[redacted]")


def test_entity_encoded_pii_outside_policy_fields_is_scrubbed(masker: Masker) -> None:
    span = record_span((FIXTURES / "alma_item_876.xml").read_bytes())
    note = b'<subfield code="a">Includes index.</subfield>'
    planted = span.replace(note, b'<subfield code="a">Ask jane&#64;example.org</subfield>')
    masked = masker.mask_raw_marcxml(planted)
    assert b"jane" not in masked and b'<subfield code="a">Ask [email]</subfield>' in masked


def test_bibframe_keeps_markup_and_loses_all_text(masker: Masker) -> None:
    path = SHARED / "corpus" / "bibframe2marc" / "rules" / "test" / "data" / "regression"
    path = path / "bibframe.xml"
    if not path.is_file():
        pytest.skip(f"shared corpus file not present: {path}")
    data = path.read_bytes()
    masked = masker.mask_raw(data, "bibframe")
    texts = [t for t in re.split(rb"<[^<>]*>", masked) if t.strip()]
    assert texts and set(texts) == {b"[redacted]"}
    assert re.findall(rb"<[^<>]*>", masked) == re.findall(rb"<[^<>]*>", data)
    assert masker.counts["raw:unknown-structure"] == 1


def test_mask_raw_dispatches_on_the_delivery_format(masker: Masker) -> None:
    iso = (FIXTURES / "vendor_approval_9xx.mrc").read_bytes()
    assert masker.mask_raw(iso, "iso2709") == masker.mask_raw_iso2709(iso)
    span, canaries, _ = planted_span()
    assert leaks(masker.mask_raw(span, "marcxml"), canaries) == []
