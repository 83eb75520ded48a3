"""A report written again for the same run keeps every earlier version, whole, beside it."""

from __future__ import annotations

import json
from pathlib import Path

from catalog_sync.models import ChunkRef, ChunkReport, CommitReport
from catalog_sync.paths import layout
from catalog_sync.pipeline.report import write_report
from catalog_sync.report_html import render_run_report

REF = ChunkRef(
    chunk_id="c1", vendor="demo", file_name="demo.mrc", file_path="/x/demo.mrc",
    file_sha256="0" * 64, format="iso2709", start=0, end=10, first_record=0, record_count=4,
)  # fmt: skip
CHUNK = ChunkReport(chunk=REF, records_total=4, accepted=4, creates=4)


def test_writing_the_report_again_moves_the_first_to_versions_and_says_so(tmp_path: Path) -> None:
    home = layout(tmp_path)
    _, out = write_report(
        home, "demo", "manual__1", [], [CHUNK], [CommitReport(chunk_id="c1", created=4)]
    )
    (out / "manifest.json").write_text('{"first": true}')
    first = (out / "report.json").read_text()
    replayed = CommitReport(chunk_id="c1", created=4, already_applied=4)

    summary, again = write_report(home, "demo", "manual__1", [], [CHUNK], [replayed], ["a note"])
    _, third = write_report(home, "demo", "manual__1", [], [CHUNK], [replayed])

    assert again == third == out
    assert summary.created == 4  # a replayed create is still a create
    assert (out / "versions" / "1" / "report.json").read_text() == first
    assert json.loads((out / "versions" / "1" / "manifest.json").read_text()) == {"first": True}
    assert json.loads((out / "versions" / "2" / "report.json").read_text())["notes"] == ["a note"]
    body = json.loads((out / "report.json").read_text())
    assert body["version"] == 3
    assert [v["path"] for v in body["earlier_versions"]] == ["versions/1", "versions/2"]
    line = "run summary: records=4 accepted=4 rejected=0 created=4 updated=0 deleted=0"
    assert all(v["summary_line"].startswith(line) for v in body["earlier_versions"])
    text = (out / "report.txt").read_text()
    assert "Version 3 of this run's report" in text and "versions/1: run summary" in text
    assert "4 change(s) had been written by an earlier try and were not sent again" in text
    page = render_run_report(body)
    assert "This is version 3 of this run" in page and "<code>versions/2</code>" in page
