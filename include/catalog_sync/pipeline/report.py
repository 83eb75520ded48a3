"""report: total a run's chunk and commit reports into the run report and its summary line."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from catalog_sync.delivery.safety import printable_name
from catalog_sync.models import ChunkReport, CommitReport, LandingFile, RunSummary
from catalog_sync.paths import RuntimeLayout, safe_name
from catalog_sync.pipeline.requestreport import render_request_lines, request_figures
from catalog_sync.storage import SharedStorage, StoredObjectMissing

REPORT_FILES = ("report.json", "report.txt", "manifest.json")


def summarize(
    chunks: Sequence[ChunkReport],
    commits: Sequence[CommitReport],
    files: Sequence[LandingFile] = (),
) -> RunSummary:
    # BIBFRAME instances that could not be mapped to MARC never reach a chunk: count them here.
    unmapped = sum(f.conversion_rejected for f in files)
    return RunSummary(
        records=sum(c.records_total for c in chunks) + unmapped,
        accepted=sum(c.accepted for c in chunks),
        rejected=sum(c.rejected for c in chunks) + unmapped,
        created=sum(c.created for c in commits),
        updated=sum(c.updated for c in commits),
        deleted=sum(c.deleted for c in commits),
        unchanged=sum(c.unchanged for c in commits),
        failed=sum(c.failed for c in commits),
        held=sum(c.held for c in commits),
    )


def report_dir(layout: RuntimeLayout, vendor: str, run_id: str) -> Path:
    return layout.reports / vendor / safe_name(run_id)


def render_text(
    vendor: str,
    run_id: str,
    files: Sequence[LandingFile],
    chunks: Sequence[ChunkReport],
    commits: Sequence[CommitReport],
    summary: RunSummary,
    notes: Sequence[str] = (),
    earlier: Sequence[ReportVersion] = (),
    refused: Mapping[str, str] | None = None,
) -> str:
    lines = [f"Catalog Sync run report - vendor {vendor}, run {run_id}", ""]
    if earlier:
        lines += [
            f"Version {len(earlier) + 1} of this run's report (tasks were re-run); earlier "
            "versions, kept as written:",
            *(f"  {v.path}: {v.summary_line}" for v in earlier),
            "",
        ]
    lines += [f"note: {n}" for n in notes] + ([""] if notes else [])
    if not files:
        lines.append("No new vendor files: nothing to load (use the force param to reload).")
    for f in files:
        name = printable_name(f.name)  # a vendor's name: one inert line whatever it holds
        lines.append(f"file {name}: {f.format}, {f.size:,} bytes, sha256 {f.sha256}")
    if refused:
        # Names are the vendor's: shown escaped, one line each, with our code and never
        # the vendor's own words (a refusal message may quote a host or member name).
        lines += ["", "Refused files (not landed; the fetch report in the task log says more):"]
        lines += [f"  {printable_name(name)}: {code}" for name, code in sorted(refused.items())]
    if chunks:
        lines += [
            "",
            f"{'chunk':<52} {'records':>8} {'rejected':>8} {'create':>7} "
            f"{'update':>7} {'delete':>7} {'same':>7}",
        ]
        for c in chunks:
            lines.append(
                f"{c.label:<52} {c.records_total:>8} {c.rejected:>8} {c.creates:>7} "
                f"{c.updates:>7} {c.deletes:>7} {c.unchanged:>7}"
            )
    reasons: Counter[str] = Counter()
    for c in chunks:
        reasons.update(c.reasons)
    for f in files:
        reasons.update({f"bibframe:{code}": n for code, n in f.conversion_reasons.items()})
    if reasons:
        lines += ["", "rejected records by reason:"]
        lines += [f"  {code}: {n}" for code, n in reasons.most_common()]
        lines.append("  (records as received, masked, in the reject files listed in report.json)")
    failures: Counter[str] = Counter()
    for cm in commits:
        failures.update(cm.failures)
    if failures:
        lines += ["", "records not written (failed), by reason:"]
        lines += [f"  {code}: {n}" for code, n in failures.most_common()]
    commit_notes = [
        (
            sum(c.matched for c in commits),
            "new record(s) matched an existing ILS record (counted as updated when a field "
            "differed, else unchanged)",
        ),
        (
            sum(c.no_change for c in commits),
            "change(s) already in the ILS copy: nothing sent (counted as unchanged)",
        ),
        (sum(c.drifted for c in commits), "ILS record(s) edited since our last write (drift)"),
    ]
    if any(n for n, _ in commit_notes):
        lines += [""] + [f"{n} {what}" for n, what in commit_notes if n]
    items = [
        sum(getattr(c, f"items_{k}") for c in commits) for k in ("created", "updated", "deleted")
    ]
    if any(items):
        # Counted apart from records: an item added to a known biblio leaves its record unchanged.
        lines += ["", "items: {} created, {} updated, {} deleted".format(*items)]
    lines += render_request_lines(commits)
    reviews: Counter[str] = Counter()
    for cm in commits:
        reviews.update(cm.reviews)
    if reviews:
        lines += ["", "records held for review (not written; counted as held):"]
        lines += [f"  {code}: {n}" for code, n in reviews.most_common()]
    diffs = [c.diff_path for c in commits if c.diff_path and _non_empty(Path(c.diff_path))]
    if diffs:
        dry = " (dry run: nothing was written)" if any(c.dry_run for c in commits) else ""
        lines += ["", f"field-level diffs, masked{dry}: {Path(diffs[0]).parent}/"]
    already = sum(c.already_applied for c in commits)
    if already:
        lines += [
            "",
            f"{already} change(s) had been written by an earlier try and were not sent again; "
            "they are counted as what they were (created, updated, deleted or unchanged).",
        ]
    if chunks and summary.outcomes != summary.accepted:
        # Only when commit did not run for every chunk (stopped before it, or a chunk failed).
        lines += [
            "",
            f"{summary.accepted - summary.outcomes} accepted record(s) were not committed: "
            "commit_chunk did not finish for every chunk",
        ]
    lines += ["", summary.line()]
    return "\n".join(lines) + "\n"


def write_report(
    layout: RuntimeLayout,
    vendor: str,
    run_id: str,
    files: Sequence[LandingFile],
    chunks: Sequence[ChunkReport],
    commits: Sequence[CommitReport],
    notes: Sequence[str] = (),
    refused: Mapping[str, str] | None = None,
) -> tuple[RunSummary, Path]:
    """Write report.json and report.txt (and point `latest` at them); returns the totals.

    `refused`: remote files fetch refused, name -> reason code (unsafe_name, off_origin, ...).
    A report already there (the report task ran again after a clear) is first moved, whole,
    to versions/<n>/: the run's first numbers are never overwritten.
    """
    summary = summarize(chunks, commits, files)
    out = report_dir(layout, vendor, run_id)
    out.mkdir(parents=True, exist_ok=True)
    earlier = keep_earlier_version(out)
    body = {
        "vendor": vendor,
        "run_id": run_id,
        "version": len(earlier) + 1,
        "earlier_versions": [v.model_dump() for v in earlier],
        "notes": list(notes),
        "written_at": datetime.now(UTC).isoformat(),
        "files": [f.model_dump() for f in files],
        "chunks": [c.model_dump() for c in chunks],
        "commits": [c.model_dump() for c in commits],
        "reject_files": [c.rejects_path for c in chunks if c.rejected],
        "refused_files": [
            {"name": name, "reason": code} for name, code in sorted((refused or {}).items())
        ],
        "summary": summary.model_dump(),
        "requests_per_written_record": {f.kind: f.as_dict() for f in request_figures(commits)},
    }
    (out / "report.json").write_text(json.dumps(body, indent=2), encoding="utf-8")
    text = render_text(
        vendor, run_id, files, chunks, commits, summary, notes, earlier, refused or {}
    )
    (out / "report.txt").write_text(text, encoding="utf-8")
    latest = layout.reports / vendor / "latest"
    tmp = latest.with_name(".latest.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(out.name)
    os.replace(tmp, latest)
    return summary, out


# Files of one report version: moved together when the report task runs again.
VERSIONED_FILES = REPORT_FILES
VERSIONS_DIR = "versions"


class ReportVersion(BaseModel):
    """An earlier report of the same run, kept under versions/<n>/ with its totals."""

    model_config = ConfigDict(extra="forbid")

    version: int
    path: str = Field(description="Folder of that version, relative to the run's report folder")
    written_at: str = ""
    summary_line: str = ""


def earlier_versions(out: Path) -> list[ReportVersion]:
    """The versions kept under out/versions, oldest first."""
    found = []
    folder = out / VERSIONS_DIR
    for sub in sorted(folder.iterdir() if folder.is_dir() else (), key=_version_number):
        report = sub / "report.json"
        if not sub.name.isdigit() or not report.is_file():
            continue
        body = json.loads(report.read_text(encoding="utf-8"))
        summary = RunSummary.model_validate(body.get("summary", {}))
        found.append(
            ReportVersion(
                version=int(sub.name),
                path=f"{VERSIONS_DIR}/{sub.name}",
                written_at=str(body.get("written_at", "")),
                summary_line=summary.line(),
            )
        )
    return found


def keep_earlier_version(out: Path) -> list[ReportVersion]:
    """Move the current report (and manifest) to versions/<n>/; returns every earlier version."""
    if (out / "report.json").is_file():
        n = len(earlier_versions(out)) + 1
        target = out / VERSIONS_DIR / str(n)
        target.mkdir(parents=True, exist_ok=True)
        for name in VERSIONED_FILES:
            if (out / name).is_file():
                os.replace(out / name, target / name)
    return earlier_versions(out)


def _version_number(path: Path) -> int:
    return int(path.name) if path.name.isdigit() else -1


def publish_report(storage: SharedStorage, layout: RuntimeLayout, vendor: str, run_id: str) -> str:
    """Put the run's report files into the run storage, and name it the vendor's latest run.

    Returns the key of the run's report folder. `reports/<vendor>/LATEST` holds that folder's
    name (storage has no symbolic links; the local `latest` link stays for the one-machine CLI).
    """
    out = report_dir(layout, vendor, run_id)
    for name in REPORT_FILES:
        if (out / name).is_file():
            storage.publish(out / name, move=True)
    for kept in (out / VERSIONS_DIR).rglob("*") if (out / VERSIONS_DIR).is_dir() else ():
        if kept.is_file():
            storage.publish(kept, move=True)
    storage.publish_text(f"reports/{vendor}/LATEST", out.name + "\n")
    return storage.key(out)


def latest_report_key(storage: SharedStorage, vendor: str) -> str | None:
    """The key of the vendor's latest run report folder, or None before its first report."""
    try:
        name = storage.read_text(f"reports/{vendor}/LATEST").strip()
    except (StoredObjectMissing, FileNotFoundError):
        return None
    return f"reports/{vendor}/{name}" if name else None


def pull_report(storage: SharedStorage, layout: RuntimeLayout, vendor: str, run_id: str) -> None:
    """Bring an earlier report of this run (and its kept versions) to this worker's folder.

    A report task re-run on another worker must see what the first one wrote, so that
    keep_earlier_version keeps it instead of overwriting it in the storage.
    """
    if not storage.shared:
        return
    prefix = storage.key(report_dir(layout, vendor, run_id))
    for stored in storage.files(prefix):
        name = stored.key[len(prefix) :].lstrip("/")
        if name in REPORT_FILES or name.startswith(f"{VERSIONS_DIR}/"):
            storage.fetch(stored.key)


def _non_empty(path: Path) -> bool:
    # A relative path is a run storage key: commit_chunk names only diffs it wrote.
    return not path.is_absolute() or (path.is_file() and path.stat().st_size > 0)
