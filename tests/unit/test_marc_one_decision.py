"""validate, normalize and the DAG take one decision on every record (issue 15, item 5).

Real records too long for ISO 2709: ten of the University of Chicago's MARCXML sample records
(folio-mod-data-import, shared corpus) would be over 99,999 bytes as ISO 2709. Written out as an
ISO 2709 writer that clips its length fields does, their directories no longer fit the bytes and
are recovered from the field terminators. Before issue 15 `validate` and the DAG accepted them
and `normalize` refused them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pymarc
import pytest
from pymarc import Indicators

from catalog_sync.changes.state import StateStore
from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.ingest_cli import normalize_main, validate_main
from catalog_sync.marc.iso2709 import frame_fields
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.split import split_file
from catalog_sync.paths import RuntimeLayout
from catalog_sync.pipeline.process import process_chunk

UCHICAGO = "folio-mod-data-import/src/test/resources/UChicago_SampleBibs.xml"


def _clipped_iso2709(record: pymarc.Record) -> bytes:
    """The record as ISO 2709 whose length fields are clipped at their widths, as writers
    that do not refuse an overlong record leave it."""
    fields = directory = b""
    for field in record.fields:
        data = field.as_marc(encoding="utf-8")
        directory += field.tag.encode() + b"%04d%05d" % (
            min(len(data), 9999),
            min(len(fields), 99999),
        )
        fields += data
    directory += b"\x1e"
    base = 24 + len(directory)
    leader = str(record.leader)
    total = min(base + len(fields) + 1, 99999)
    head = b"%05d" % total + leader[5:9].encode() + b"a" + leader[10:12].encode()
    return head + b"%05d" % base + leader[17:].encode() + directory + fields + b"\x1d"


@pytest.fixture
def overlong_file(tmp_path: Path, corpus_dir: Path) -> Path:
    source = corpus_dir / UCHICAGO
    if not source.is_file():
        pytest.skip(f"{source} is absent (shared corpus)")
    records = [r for r in pymarc.parse_xml_to_array(str(source)) if r is not None]
    for record in records:
        # One 880 of each carries U+FFFD as both indicators (item 1's repair); blank them here
        # so that these records differ from an ordinary one only in their length.
        for field in record.get_fields("880"):
            if field.indicators == Indicators("\ufffd", "\ufffd"):
                field.indicators = Indicators(" ", " ")
    path = tmp_path / "uchicago.mrc"
    path.write_bytes(b"".join(_clipped_iso2709(r) for r in records))
    return path


def _vendor() -> VendorConfig:
    return VendorConfig(name="demo", source=SourceConfig(inbox="inbox/demo"), required_fields=[])


def test_validate_normalize_and_the_dag_reject_the_same_overlong_records(
    overlong_file: Path, tmp_path: Path
) -> None:
    validate_report = tmp_path / "validate.json"
    assert (
        validate_main(
            [str(overlong_file), "--required-fields", "", "--report", str(validate_report)]
        )
        == 0
    )
    validated = json.loads(validate_report.read_text())

    normalize_report = tmp_path / "normalize.json"
    out = tmp_path / "out.mrc"
    assert (
        normalize_main(
            [
                str(overlong_file),
                str(out),
                "--required-fields",
                "",
                "--report",
                str(normalize_report),
            ]
        )
        == 0
    )
    normalized = json.loads(normalize_report.read_text())

    vendor = _vendor()
    landing = describe_landing(overlong_file, vendor.name)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    layout = RuntimeLayout(tmp_path / "run")
    chunks = [
        process_chunk(ref, vendor, layout, state, "run-1")
        for ref in split_file(landing, records_per_chunk=20)
    ]
    dag_reasons: dict[str, int] = {}
    for chunk in chunks:
        for code, n in chunk.reasons.items():
            dag_reasons[code] = dag_reasons.get(code, 0) + n

    assert validated["records_total"] == normalized["records_total"] == 62
    assert validated["accepted"] == normalized["accepted"] == sum(c.accepted for c in chunks)
    assert validated["reasons"] == normalized["reasons"] == dag_reasons
    assert validated["reasons"].get("too_long_for_iso2709") == 10
    # The refused records are the ones whose directory had to be recovered.
    recovered = [
        r
        for r in overlong_file.read_bytes().split(b"\x1d")[:-1]
        if "directory_recovered" in frame_fields(r + b"\x1d").warnings
    ]
    assert len(recovered) == 10
    # What normalize wrote is what it accepted, every record readable again.
    written = [r for r in pymarc.MARCReader(out.read_bytes(), to_unicode=True) if r is not None]
    assert len(written) == normalized["accepted"]
