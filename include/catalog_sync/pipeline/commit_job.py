"""What every record of one chunk's commit shares, and each record read on both sides.

The landing file's record (checked against what was staged) and the ILS's copy (parsed, or
refused as unreadable): split from commit.py, which decides and writes each change.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pymarc
from pymarc import Record, record_to_xml

from catalog_sync.changes.fingerprint import ils_comparable, record_fingerprint
from catalog_sync.changes.protected import FieldRules, TagSet
from catalog_sync.changes.recordiff import content_fingerprint, diff_records, masked_changes
from catalog_sync.changes.state import AppliedRecord, StateCalls
from catalog_sync.config import VendorConfig
from catalog_sync.ils.client import Candidate, ILSClient
from catalog_sync.marc.prepare import Rejection, prepare_record
from catalog_sync.marc.reader import RawRecord, read_record_at
from catalog_sync.models import ChunkRef, StagedChange
from catalog_sync.pipeline.outcomes import IlsRecordUnreadable, PayloadNotXml, StagedRecordChanged
from catalog_sync.privacy import Masker


def incoming_record(ref: ChunkRef, change: StagedChange, vendor: VendorConfig) -> Record:
    """Re-read the record from the landing file: ILS-bound values never rest in staging.

    The record must be the one staged, fingerprint for fingerprint: the dry run and the
    approval gate showed that one, so a landing file edited since is never what gets written.
    """
    raw = RawRecord(
        offset=change.offset,
        data=read_record_at(ref.file_path, change.offset, change.length),
        ordinal=-1,
    )
    prepared = prepare_record(raw, ref.format, vendor)
    if isinstance(prepared, Rejection):
        raise StagedRecordChanged(
            f"record at byte {change.offset} of {ref.file_name} no longer prepares: "
            f"{prepared.reason}"
        )
    if record_fingerprint(prepared.record) != change.fingerprint:
        raise StagedRecordChanged(
            f"record at byte {change.offset} of {ref.file_name} is not the record staged "
            "(its content fingerprint changed): the landing file was edited after process_chunk"
        )
    return prepared.record


def marcxml(record: Record) -> bytes:
    """The MARCXML an ILS is sent, checked well-formed first (~20 us with expat).

    Validation drops what XML cannot carry, but a payload is the last point before the ILS:
    Koha answers an unparseable one 500, which reads as an outage and is retried until the
    whole chunk fails, and FOLIO's adapter parses it too. Refused here, it fails alone.
    """
    xml: bytes = record_to_xml(record, namespace=True)
    try:
        expat.ParserCreate().Parse(xml, True)
    except expat.ExpatError as exc:
        raise PayloadNotXml(
            f"its MARCXML is not well-formed ({exc}), so no ILS can read it"
        ) from exc
    return xml


def parse_ils_record(marcxml: bytes) -> Record:
    try:
        records = pymarc.parse_xml_to_array(io.BytesIO(marcxml), strict=False)
    except Exception as exc:  # the XML parser's own errors: SAXParseException, ValueError, ...
        # e.g. a control character in a field: that copy needs a person, not a retry.
        raise IlsRecordUnreadable(
            f"the ILS copy is not readable MARCXML ({type(exc).__name__})"
        ) from exc
    if len(records) != 1 or records[0] is None:
        raise IlsRecordUnreadable("the ILS answered with no readable MARCXML record")
    record: Record = records[0]
    return record


@dataclass
class CommitJob:
    """What every record of one chunk's commit shares."""

    ref: ChunkRef
    vendor: VendorConfig
    client: ILSClient
    state: StateCalls
    run_id: str
    rules: FieldRules
    masker: Masker
    applied: dict[str, AppliedRecord]
    dry_run: bool
    diffs: list[dict[str, Any]]
    # Match candidates found for the chunk's creates in batched searches (record key -> them).
    candidates: dict[str, list[Candidate]] = field(default_factory=dict)
    # Items written for the chunk's records ("created", "updated", "deleted"): counted apart
    # from the records, which a delivery adding an item to a known biblio leaves unchanged.
    items: Counter[str] = field(default_factory=Counter)

    @property
    def ils(self) -> str:
        return self.vendor.ils_conn_id

    def ils_fingerprint(self, record: Record) -> str:
        # Protected and volatile fields are the ILS's own business: editing them is not drift;
        # nor is what Koha rebuilds on save (999, 005, our stamp, 001 under autoControlNumber).
        ignore = TagSet(self.rules.protected.patterns + self.rules.volatile.patterns)
        return content_fingerprint(ils_comparable(record, drop_001=True), ignore)

    def note_diff(
        self, change: StagedChange, outcome: str, before: Record | None, after: Record | None
    ) -> None:
        fields = diff_records(before, after, ignore=self.rules.volatile)
        self.diffs.append(
            {
                "record_key": change.record_key,
                "correlation_id": change.correlation_id,
                "action": change.action.value,
                "outcome": outcome,
                "fields": masked_changes(fields, self.masker),
            }
        )

    def note_review(self, change: StagedChange, reason: str) -> None:
        """A record a person must look at: listed in the change report with its reason."""
        self.diffs.append(
            {
                "record_key": change.record_key,
                "correlation_id": change.correlation_id,
                "action": change.action.value,
                "outcome": f"review:{reason}",
                "fields": [],
            }
        )


def diff_path(report_dir: Path, chunk_id: str) -> Path:
    return report_dir / "diffs" / f"{chunk_id}.jsonl"


def write_diffs(path: Path, diffs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as out:
        for entry in sorted(diffs, key=lambda d: str(d["record_key"])):
            out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(tmp, path)
