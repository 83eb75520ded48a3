"""The run manifest: what one run read, decided, wrote and masked, as one JSON document.

    trigger = trigger_from_dag_run(dag_run.run_type, dag_run.triggered_by,
                                   user=dag_run.triggering_user_name,
                                   clear_number=dag_run.clear_number)
    manifest = RunManifest(run_id=run_id, dag_id=dag_id, vendor="demo", trigger=trigger)
    manifest.add_files(landing_files)
    for report in chunk_reports:
        manifest.add_chunk_report(report)
    for report in commit_reports:
        manifest.add_commit_report(report)
    manifest.add_masking_counts(masking_counts)        # Masker.counts, summed over chunks
    manifest.finish()
    write_manifest(manifest, report_dir / "manifest.json")

It holds ids, hashes, counts and reason codes only; free-text error messages pass through the
PII scrubbers before they are stored, and the JSON once more before it is written.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from catalog_sync.audit import audit_scrubber
from catalog_sync.models import ChunkReport, CommitReport, LandingFile, RecordFormat, RunSummary

MANIFEST_VERSION = 1


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    CLEAR = "clear"
    ASSET = "asset"
    BACKFILL = "backfill"
    UNKNOWN = "unknown"


class Trigger(BaseModel):
    """What started the run, and who, where Airflow knows."""

    model_config = ConfigDict(extra="forbid")

    kind: TriggerKind
    by: str | None = Field(default=None, description="User or system that triggered or cleared")
    run_type: str | None = Field(default=None, description="Airflow's DagRun.run_type as given")
    triggered_by: str | None = Field(default=None, description="Airflow's DagRun.triggered_by")
    clear_number: int = Field(default=0, ge=0)


_RUN_TYPES = {
    "scheduled": TriggerKind.SCHEDULE,
    "manual": TriggerKind.MANUAL,
    "operator_triggered": TriggerKind.MANUAL,
    "backfill": TriggerKind.BACKFILL,
    "asset_triggered": TriggerKind.ASSET,
    "asset_materialization": TriggerKind.ASSET,
    "dataset_triggered": TriggerKind.ASSET,
}


def trigger_from_dag_run(
    run_type: str | None,
    triggered_by: str | None = None,
    user: str | None = None,
    clear_number: int = 0,
) -> Trigger:
    """The trigger from a DagRun's plain fields (no Airflow import here).

    A run whose tasks were cleared (`clear_number` > 0) is recorded as `clear`: it is running
    again because an operator asked for it, whatever started it first.
    """
    run_type_text = str(getattr(run_type, "value", run_type)) if run_type is not None else None
    triggered_text = (
        str(getattr(triggered_by, "value", triggered_by)) if triggered_by is not None else None
    )
    if clear_number > 0:
        kind = TriggerKind.CLEAR
    else:
        kind = _RUN_TYPES.get((run_type_text or "").lower(), TriggerKind.UNKNOWN)
    by = user
    if by is None and kind is TriggerKind.SCHEDULE:
        by = "scheduler"
    return Trigger(
        kind=kind,
        by=by,
        run_type=run_type_text,
        triggered_by=triggered_text,
        clear_number=clear_number,
    )


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sha256: str
    size: int
    format: RecordFormat


class IlsWrites(BaseModel):
    model_config = ConfigDict(extra="forbid")

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    already_applied: int = Field(
        default=0, description="Of created/updated/deleted: written by an earlier try, not resent"
    )
    failed: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    held: int = Field(default=0, description="Held for review, not written")


class Drift(BaseModel):
    """Records changed in the ILS since the last sync (seen at commit time), by field."""

    model_config = ConfigDict(extra="forbid")

    records: int = 0
    fields: dict[str, int] = Field(default_factory=dict, description="tag -> records drifted")
    examples: list[str] = Field(default_factory=list, description="a few record keys")


class ManifestError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    code: str
    message: str = ""
    chunk_id: str | None = None


_MAX_DRIFT_EXAMPLES = 20


class RunManifest(BaseModel):
    """One run, for auditors: inputs by hash, trigger, counts per stage, masking, ILS writes."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    manifest_version: int = MANIFEST_VERSION
    run_id: str
    dag_id: str = ""
    vendor: str
    trigger: Trigger
    dry_run: bool = False
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    status: str = "running"
    files: list[ManifestFile] = Field(default_factory=list)
    stages: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="stage -> outcome -> count"
    )
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    warnings: dict[str, int] = Field(default_factory=dict)
    masking: dict[str, int] = Field(default_factory=dict, description="rule id -> values masked")
    ils_writes: IlsWrites = Field(default_factory=IlsWrites)
    drift: Drift = Field(default_factory=Drift)
    errors: list[ManifestError] = Field(default_factory=list)
    chunks: list[str] = Field(default_factory=list, description="chunk ids, in report order")

    def count(self, stage: str, outcome: str, n: int = 1) -> None:
        """Add `n` to the count of `outcome` at `stage` (e.g. count("fetch", "files", 2))."""
        outcomes = self.stages.setdefault(stage, {})
        outcomes[outcome] = outcomes.get(outcome, 0) + n

    def add_files(self, files: Iterable[LandingFile]) -> None:
        for f in files:
            self.files.append(
                ManifestFile(name=f.name, sha256=f.sha256, size=f.size, format=f.format)
            )
        self.stages.setdefault("fetch", {})["files"] = len(self.files)

    def add_chunk_report(self, report: ChunkReport) -> None:
        self.chunks.append(report.chunk_id)
        self.count("process", "records", report.records_total)
        self.count("process", "accepted", report.accepted)
        self.count("process", "rejected", report.rejected)
        for outcome, n in (
            ("create", report.creates),
            ("update", report.updates),
            ("delete", report.deletes),
            ("unchanged", report.unchanged),
        ):
            self.count("decide", outcome, n)
        self.reject_reasons = _merge(self.reject_reasons, report.reasons)
        self.warnings = _merge(self.warnings, report.warnings)

    def add_commit_report(self, report: CommitReport) -> None:
        w = self.ils_writes
        self.ils_writes = IlsWrites(
            created=w.created + report.created,
            updated=w.updated + report.updated,
            deleted=w.deleted + report.deleted,
            unchanged=w.unchanged + report.unchanged,
            already_applied=w.already_applied + report.already_applied,
            failed=w.failed + report.failed,
            failures=_merge(w.failures, report.failures),
            held=w.held + report.held,
        )
        outcomes = ("created", "updated", "deleted", "unchanged", "already_applied", "failed")
        for outcome in (*outcomes, "held"):
            self.count("commit", outcome, getattr(report, outcome))

    def add_masking_counts(self, counts: Mapping[str, int]) -> None:
        self.masking = _merge(self.masking, counts)

    def add_drift(self, record_key: str, tags: Iterable[str]) -> None:
        """One ILS record found changed since the last sync, in these fields."""
        self.drift.records += 1
        self.drift.fields = _merge(self.drift.fields, Counter(tags))
        if len(self.drift.examples) < _MAX_DRIFT_EXAMPLES:
            self.drift.examples.append(audit_scrubber().scrub(record_key))

    def add_error(
        self, stage: str, code: str, message: str = "", chunk_id: str | None = None
    ) -> None:
        """An error with its stable code; the message is scrubbed of PII shapes."""
        scrub = audit_scrubber().scrub
        self.errors.append(
            ManifestError(stage=stage, code=code, message=scrub(message), chunk_id=chunk_id)
        )

    def summary(self) -> RunSummary:
        process, w = self.stages.get("process", {}), self.ils_writes
        return RunSummary(
            records=process.get("records", 0),
            accepted=process.get("accepted", 0),
            rejected=process.get("rejected", 0),
            created=w.created,
            updated=w.updated,
            deleted=w.deleted,
            unchanged=w.unchanged,
            failed=w.failed,
            held=w.held,
        )

    def unaccounted(self) -> int:
        """Records neither accepted nor rejected (must be 0: every record is accounted for)."""
        process = self.stages.get("process", {})
        return process.get("records", 0) - process.get("accepted", 0) - process.get("rejected", 0)

    def finish(self, status: str | None = None, at: datetime | None = None) -> None:
        """Stamp the end; status defaults to failed with errors or ILS failures, else success."""
        self.finished_at = at or datetime.now(UTC)
        if status is None:
            status = "failed" if self.errors or self.ils_writes.failed else "success"
        self.status = status

    def write(self, path: Path) -> Path:
        return write_manifest(self, path)


def _merge(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    merged = Counter(a)
    merged.update(b)
    return dict(sorted(merged.items()))


def write_manifest(manifest: RunManifest, path: Path) -> Path:
    """Write the manifest as JSON, atomically (a reader never sees half a manifest)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = audit_scrubber().scrub(manifest.model_dump_json(indent=2))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_manifest(path: Path) -> RunManifest:
    return RunManifest.model_validate_json(Path(path).read_text(encoding="utf-8"))
