"""Run report HTML: every section from report.json, timings as charts, values escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalog_sync.models import ChunkRef, ChunkReport, CommitReport
from catalog_sync.paths import layout
from catalog_sync.pipeline.report import write_report
from catalog_sync.report_html import ChunkTiming, render_run_report

T0 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def written_report(tmp_path: Path, reasons: dict[str, int]) -> dict[str, object]:
    ref = ChunkRef(
        chunk_id="c1", vendor="demo", file_name="demo.mrc", file_path="/x/demo.mrc",
        file_sha256="0" * 64, format="iso2709", start=0, end=10, first_record=0,
        record_count=4,
    )  # fmt: skip
    chunk = ChunkReport(chunk=ref, records_total=4, accepted=3, rejected=1, reasons=reasons)
    commit = CommitReport(chunk_id="c1", created=3)
    _, out = write_report(layout(tmp_path), "demo", "manual__1", [], [chunk], [commit])
    body: dict[str, object] = json.loads((out / "report.json").read_text())
    return body


def test_a_run_without_files_says_so_and_still_renders_every_section(tmp_path: Path) -> None:
    page = render_run_report(written_report(tmp_path, {}))

    assert "No new vendor files in this run." in page
    for anchor in ("stages", "changes", "rejects", "drift", "ils", "chunks"):
        assert f'<section id="{anchor}">' in page
    assert "no timings recorded for this run" in page


def test_reason_codes_and_run_ids_are_escaped(tmp_path: Path) -> None:
    page = render_run_report(written_report(tmp_path, {"<script>alert(1)</script>": 1}))

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_commit_timings_become_throughput_and_latency_lines(tmp_path: Path) -> None:
    timeline = [
        ChunkTiming("demo.mrc records 1-250", T0, T0 + timedelta(seconds=5), 250, 12.5),
        ChunkTiming("demo.mrc records 251-500", T0 + timedelta(seconds=1),
                    T0 + timedelta(seconds=11), 250, 40.0),
    ]  # fmt: skip

    page = render_run_report(written_report(tmp_path, {}), timeline)

    assert page.count("<polyline") == 2
    assert "5.0 seconds into the commit: 50.0 records/s" in page
    assert "11.0 seconds into the commit: 25.0 records/s" in page
    assert "11.0 seconds into the commit: 40.0 ms" in page
    assert "ILS request latency (ms, mean per chunk)" in page


def test_without_request_latency_the_page_labels_its_upper_bound_honestly(tmp_path: Path) -> None:
    timeline = [ChunkTiming("c1", T0, T0 + timedelta(seconds=2), 100)]

    page = render_run_report(written_report(tmp_path, {}), timeline)

    assert "chunk time per record (ms), an upper bound of ILS latency" in page
    assert "2.0 seconds into the commit: 20.0 ms" in page
