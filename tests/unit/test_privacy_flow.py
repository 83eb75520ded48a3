"""One chunk through the privacy stages as process_chunk wires them: nothing it leaves has PII."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from pymarc import Leader, MARCReader, Record
from tests.privacy_canaries import find_canaries, plant_canaries

from catalog_sync.audit import (
    audit_context,
    configure_audit_log,
    correlation_id,
    get_audit_logger,
    remove_audit_log,
)
from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.manifest import RunManifest, trigger_from_dag_run, write_manifest
from catalog_sync.marc.prepare import PreparedRecord, Rejection, prepare_record
from catalog_sync.marc.reader import RawRecord
from catalog_sync.marc.rejects import RejectWriter
from catalog_sync.privacy import Masker, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"


def delivery(tmp_path: Path) -> tuple[Path, list[str]]:
    """A vendor file of real records with canaries planted; the fourth record's directory broken."""
    records: list[Record] = []
    for name in ("vendor_shelfready_priced_9xx.mrc", "loc_acquisition_provenance.mrc"):
        with (FIXTURES / name).open("rb") as fh:
            records += [r for r in MARCReader(fh, to_unicode=True) if r is not None][:3]
    planted, canaries = plant_canaries(records)
    chunks = []
    for record in planted:
        leader = str(record.leader)
        record.leader = Leader(leader[:9] + "a" + leader[10:])
        chunks.append(record.as_marc())
    chunks[3] = chunks[3][:24] + b"X" + chunks[3][25:]  # unreadable directory: a reject
    path = tmp_path / "landing" / "delivery.mrc"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(chunks))
    return path, list(canaries)


def test_staging_rejects_audit_log_and_manifest_hold_no_canary(tmp_path: Path) -> None:
    landing, canaries = delivery(tmp_path)
    data = landing.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    vendor = VendorConfig(name="demo", source=SourceConfig(inbox="inbox/demo"))
    masker = Masker(load_policy(), secrets.token_bytes(32))
    manifest = RunManifest(
        run_id="manual__t", vendor="demo", trigger=trigger_from_dag_run("manual")
    )
    audit_handler = configure_audit_log(tmp_path / "logs" / "audit.jsonl")
    audit = get_audit_logger("process_chunk")
    chunk_id = "c" * 20
    (tmp_path / "staging").mkdir()
    try:
        with (
            audit_context(run_id="manual__t", vendor="demo", file_sha256=sha, chunk_id=chunk_id),
            RejectWriter(
                tmp_path / "rejects" / f"{chunk_id}.rej",
                chunk_id=chunk_id,
                mask=lambda raw: masker.mask_raw(raw, "iso2709"),
            ) as rejects,
            (tmp_path / "staging" / "diff.jsonl").open("w", encoding="utf-8") as diff,
        ):
            offset = 0
            for ordinal, body in enumerate(data.split(b"\x1d")[:-1]):
                raw = RawRecord(offset, body + b"\x1d", ordinal)
                offset += len(raw.data)
                with audit_context(
                    correlation_id=correlation_id("demo", sha, chunk_id, raw.offset)
                ):
                    result = prepare_record(raw, "iso2709", vendor)
                    if isinstance(result, Rejection):
                        rejects.add(raw, result)
                        audit.warning("record.rejected", reason=result.reason, detail=result.detail)
                        continue
                    assert isinstance(result, PreparedRecord)
                    masked = masker.mask_record(result.record, share_unchanged=True)
                    diff.write(json.dumps(masked.as_dict(), ensure_ascii=False) + "\n")
                    audit.info("record.staged", record=str(masked))
        assert rejects.count >= 1
        manifest.add_masking_counts(masker.counts)
        write_manifest(manifest, tmp_path / "reports" / "manifest.json")
    finally:
        remove_audit_log(audit_handler)

    left = [tmp_path / d for d in ("staging", "rejects", "logs", "reports")]
    assert find_canaries(left, canaries) == []
    # The landing copy (what commit_chunk re-reads for the ILS) still has every value.
    assert {c for _, c in find_canaries([landing], canaries)} == set(canaries)
    assert manifest.masking["vendor-invoice"] > 0 and manifest.masking["scrub:email"] > 0
