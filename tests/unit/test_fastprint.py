"""Fingerprint version 2: from the delivered bytes when they are canonical, else from the record;
either way the same value for the same content, whatever format or layout it came in."""

from __future__ import annotations

import json
from pathlib import Path

import pymarc
import pytest

from catalog_sync.changes.fingerprint import record_fingerprint, record_fingerprint_v1
from catalog_sync.changes.state import StateStore
from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.fastprint import PREFIX, fingerprint_record, fingerprint_version
from catalog_sync.marc.iso2709 import frame_fields
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, prepare_record
from catalog_sync.marc.reader import RawRecord, iter_chunk
from catalog_sync.marc.split import split_file
from catalog_sync.models import StagedChange
from catalog_sync.paths import RuntimeLayout
from catalog_sync.pipeline.process import process_chunk

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"
VENDOR = VendorConfig(name="test", source=SourceConfig(inbox="test"))
ISO_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in {".mrc", ".dat", ".marc"})


def prepared_records(path: Path) -> list[tuple[RawRecord, PreparedRecord]]:
    landing = describe_landing(path, vendor="test")
    out = []
    for ref in split_file(landing, records_per_chunk=1000):
        for raw in iter_chunk(ref):
            result = prepare_record(raw, landing.format, VENDOR)
            if isinstance(result, PreparedRecord):
                out.append((raw, result))
    return out


@pytest.mark.parametrize("name", ISO_FIXTURES)
def test_the_bytes_and_the_parsed_record_give_the_same_fingerprint(name: str) -> None:
    # Covers clean UTF-8 and ASCII (canonical), MARC-8, repaired indicators, NFC changes,
    # control characters and recovered directories (serialised from the record).
    for _raw, prepared in prepared_records(FIXTURES / name):
        assert prepared.fingerprint() == record_fingerprint(prepared.record)


def test_clean_records_take_the_bytes_path_and_converted_ones_do_not() -> None:
    utf8 = prepared_records(FIXTURES / "test_data.utf8.mrc")
    # Laid out canonically, all of them; those with decomposed diacritics (28) are NFC'd.
    assert [p.canonical is None for _, p in utf8] == [
        "nfc_normalized" in p.warnings for _, p in utf8
    ]
    assert any(p.canonical is not None for _, p in utf8)
    marc8 = prepared_records(FIXTURES / "diac-4-theo-directly-from-sierra.mrc")
    assert marc8 and all(p.canonical is None for _, p in marc8)
    repaired = prepared_records(FIXTURES / "regression45.dat")
    assert any("indicator_stray_byte_dropped" in p.warnings for _, p in repaired)
    assert all(
        p.canonical is None for _, p in repaired if "indicator_stray_byte_dropped" in p.warnings
    )


def test_the_same_records_as_iso2709_and_marcxml_have_the_same_fingerprints() -> None:
    iso = prepared_records(FIXTURES / "test_data.utf8.mrc")
    xml = prepared_records(FIXTURES / "test_data.utf8.marc.xml")
    assert len(iso) == len(xml) == 30
    assert [p.fingerprint() for _, p in iso] == [p.fingerprint() for _, p in xml]
    # MARC-8 in, and the same records converted to UTF-8 by MarcEdit (3 of the 8 MARC-8
    # records are rejected): the same content, so the same fingerprint, as in version 1.
    marc8 = {
        p.control_number: p
        for _, p in prepared_records(FIXTURES / "diac-4-theo-directly-from-sierra.mrc")
    }
    utf8 = {
        p.control_number: p
        for _, p in prepared_records(FIXTURES / "diac-4-theo-MarcEdit-utf8-processed.mrc")
    }
    pairs = [(marc8[k], utf8[k]) for k in sorted(marc8.keys() & utf8.keys(), key=str)]
    assert len(pairs) == 5
    same = [a.fingerprint() == b.fingerprint() for a, b in pairs]
    v1_same = [record_fingerprint_v1(a.record) == record_fingerprint_v1(b.record) for a, b in pairs]
    assert all(same) and same == v1_same


def _relaid(data: bytes) -> bytes:
    """The same record with its fields stored in reverse order (directory order kept)."""
    layout = frame_fields(data)
    pieces = [raw + b"\x1e" for _tag, raw in layout.fields]
    starts, at = [0] * len(pieces), 0
    for i in reversed(range(len(pieces))):
        starts[i], at = at, at + len(pieces[i])
    directory = b"".join(
        f"{tag}{len(p):04d}{s:05d}".encode()
        for (tag, _), p, s in zip(layout.fields, pieces, starts, strict=True)
    )
    body = directory + b"\x1e" + b"".join(reversed(pieces)) + b"\x1d"
    base = 24 + len(directory) + 1
    leader = f"{24 + len(body):05d}{layout.leader[5:12]}{base:05d}{layout.leader[17:]}"
    return leader.encode() + body


def test_a_record_laid_out_differently_keeps_its_fingerprint() -> None:
    raw, prepared = prepared_records(FIXTURES / "test.dat")[0]
    moved = prepare_record(RawRecord(0, _relaid(raw.data), 0), "iso2709", VENDOR)
    assert isinstance(moved, PreparedRecord)
    assert prepared.canonical is not None and moved.canonical is None
    assert moved.warnings == prepared.warnings
    assert moved.fingerprint() == prepared.fingerprint()


def test_leader_lengths_do_not_count_and_content_does() -> None:
    raw, prepared = prepared_records(FIXTURES / "test.dat")[0]
    before = prepared.fingerprint()
    # Record length and base address are the serialisation's; leader/05 (status) is content.
    record = prepared.record
    record.leader = pymarc.Leader(
        "99999" + str(record.leader)[5:12] + "00000" + str(record.leader)[17:]
    )
    assert fingerprint_record(record) == before
    record.leader = pymarc.Leader(str(record.leader)[:5] + "d" + str(record.leader)[6:])
    assert fingerprint_record(record) != before
    record.leader = pymarc.Leader(str(raw.data[:24], "ascii"))
    record["245"]["a"] = record["245"]["a"] + "x"
    assert fingerprint_record(record) != before


def test_a_fingerprint_says_which_version_made_it() -> None:
    _, prepared = prepared_records(FIXTURES / "test.dat")[0]
    v2 = prepared.fingerprint()
    v1 = record_fingerprint_v1(prepared.record)
    assert v2.startswith(PREFIX) and len(v2) == len(v1) == 64
    assert (fingerprint_version(v2), fingerprint_version(v1)) == (2, 1)


def test_staging_lines_are_what_the_stagedchange_model_would_write(tmp_path: Path) -> None:
    landing = describe_landing(FIXTURES / "test_data.utf8.mrc", vendor="test")
    [ref] = split_file(landing, records_per_chunk=1000)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    report = process_chunk(ref, VENDOR, RuntimeLayout(tmp_path), state, "run-1")
    lines = Path(report.staging_path).read_text(encoding="utf-8").splitlines()
    assert len(lines) == report.accepted == 30
    for line in lines:
        model = StagedChange.model_validate_json(line)
        assert line == json.dumps(model.model_dump(mode="json"), separators=(",", ":"))
        assert model.fingerprint.startswith(PREFIX)
