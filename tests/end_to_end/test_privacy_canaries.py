"""No PII leaves the ILS: canaries planted in real records appear only in the emulator's store."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pymarc
import pytest

from catalog_sync.paths import REPO_ROOT
from tests.end_to_end.harness import DemoRun
from tests.privacy_canaries import find_canaries, plant_canaries, write_records

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"


def test_canaries_reach_the_ils_but_no_log_xcom_staging_reject_file_or_report(
    demo: DemoRun, capfd: pytest.CaptureFixture[str]
) -> None:
    with SAMPLE.open("rb") as fh:
        originals = list(itertools.islice(pymarc.MARCReader(fh, to_unicode=True), 40))
    # Two planted records lose their title: they are rejected and land in the reject file.
    broken, broken_canaries = plant_canaries(originals[:2], prefix="QZREJECT")
    for record in broken:
        record.remove_fields("245")
    loaded, canaries = plant_canaries(originals[2:])
    write_records(broken + loaded, demo.inbox / "canaries.mrc")

    run = demo.run()
    out, err = capfd.readouterr()

    assert run.state == "success"
    summary = demo.summary()
    assert (summary["rejected"], summary["created"]) == (2, 38)
    rejects = list((demo.home / "rejects").rglob("*.rej"))
    assert rejects and all(p.stat().st_size > 0 for p in rejects)

    # Everything the run left, except the vendor's own delivery and its landed copy.
    left = [p for p in demo.home.iterdir() if p.name not in ("inbox", "landing")]
    airflow_home = Path(os.environ["AIRFLOW_HOME"])  # task logs and the XCom table
    task_output = demo.home.parent / "task-output.txt"
    task_output.write_text(out + err)
    leaks = find_canaries([*left, airflow_home, task_output], canaries + broken_canaries)
    assert leaks == []

    # The ILS did receive, in full, every value of the records it was sent.
    emulator_files = list(demo.emulator_db.parent.glob(demo.emulator_db.name + "*"))  # + WAL
    received = {value for _, value in find_canaries(emulator_files, canaries.ils_values)}
    assert received == set(canaries.ils_values)
    manifest = json.loads((demo.home / "reports" / "demo" / "latest" / "manifest.json").read_text())
    assert sum(manifest["masking"].values()) > 0
