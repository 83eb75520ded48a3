"""The benchmark harness runs on a small real file and writes JSON, Markdown and PNG results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pymarc

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
sys.path.insert(0, str(REPO_ROOT / "bench"))

from corpus import CHANGE_NOTE, take_records, with_changes  # noqa: E402
from pngchart import bar_chart  # noqa: E402


def test_harness_writes_results_with_every_stage_and_target(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = dict(os.environ, CATALOG_SYNC_BENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "run.py"), "--file", str(SAMPLE),
         "--records", "40", "--only", "stages,gc", "--worktree", "--out", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())

    assert results["errors"] == {}
    assert {"nproc", "cpu_model", "ram_gib"} <= results["machine"].keys()
    assert "start" in results["load"]
    stages = results["stages"]["stages"]
    assert results["stages"]["records"] == 40
    assert stages["pymarc"]["ratio_to_pymarc"] == 1.0
    for name in ("parse", "validate", "prepare", "mask", "fingerprint", "process_chunk"):
        assert stages[name]["status"] == "measured", name
        assert stages[name]["records_per_s"] > 0
        assert stages[name]["ratio_to_pymarc"] > 0
    assert stages["diff"]["status"] in {"measured", "pending"}
    assert set(results["gc"]["modes"]) == {"default", "freeze_threshold"}
    assert {t["target"].split(" ")[0] for t in results["targets"]} >= {"process_chunk", "commit"}

    md = (out / "results.md").read_text()
    assert "| stage | records/s per core | µs/record | ratio to bare pymarc |" in md
    assert "## Targets" in md
    png = (out / "stages.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"


def test_changed_copy_revises_every_twentieth_record_and_keeps_its_control_number(
    tmp_path: Path,
) -> None:
    base = take_records(SAMPLE, 100, tmp_path / "base.mrc")
    changed = with_changes(base, tmp_path / "changed.mrc", every=20)

    with base.open("rb") as a, (tmp_path / "changed.mrc").open("rb") as b:
        pairs = list(zip(pymarc.MARCReader(a), pymarc.MARCReader(b), strict=True))
    assert changed == 5 and len(pairs) == 100
    revised = [n for n, (old, new) in enumerate(pairs) if old.as_marc() != new.as_marc()]
    assert revised == [19, 39, 59, 79, 99]
    for n in revised:
        old, new = pairs[n]
        assert old["001"].data == new["001"].data
        assert CHANGE_NOTE in new.get_fields("500")[-1]["a"]


def test_chart_is_a_png_of_the_requested_size(tmp_path: Path) -> None:
    path = bar_chart(tmp_path / "c.png", "T", [("PYMARC", 1.0, "1.00X"), ("MASK", 2.5, "2.50X")])
    data = path.read_bytes()
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert data.startswith(b"\x89PNG") and width > 520 and height == 60 + 26 * 2 + 40


def test_share_while_requesting_leaves_task_start_up_to_the_fixed_overhead() -> None:
    from prodmetrics import CounterTimeline, RequestEvent, request_profile, steady_metrics

    # Two commit tasks in a 10 s window at 100 req/s: each starts up for 4 s, then sends
    # 100 requests/s for 4 s (the second 1 s after the first), then tears down.
    timeline = CounterTimeline("http://unused")
    timeline.samples = [
        (t / 10, max(0, min(500, round((t / 10 - 4) * 100))), 0) for t in range(101)
    ]
    tasks = [
        request_profile([RequestEvent(4.0 + i / 50, 20.0, 0.0) for i in range(201)], 0.0, 9.0),
        request_profile([RequestEvent(5.0 + i / 50, 20.0, 0.0) for i in range(151)], 1.0, 10.0),
    ]
    steady = steady_metrics(tasks, timeline, 100.0, 10.0)

    assert (
        tasks[0]["to_first_request_s"] == 4.0
        and tasks[0]["requests_per_s_while_requesting"] == 50.2
    )
    assert steady["requesting_s"] == 4.0 and steady["fixed_overhead_s"] == 6.0
    assert steady["share_while_requesting"] == 1.0  # the whole-window share would be 0.4


def test_daily_figures_set_the_wall_time_against_the_issue_budget() -> None:
    from run import daily_figures

    row = {
        "rate_limit": 200.0,
        "wall_s": 300.0,
        "requests_per_written_record": {"all": {"per_written": 1.1}},
    }
    figures = daily_figures(row, 250_000, 12_500, 40.0)

    assert figures["budget_s"] == round(1.5 * (40.0 + 12_500 / 200.0) + 60, 1)
    assert figures["records_per_s"] == round(250_000 / 300.0, 1)
    assert figures["requests_per_written_record"] == 1.1


def test_the_initial_load_is_reported_beside_folio_data_import() -> None:
    from report import markdown

    load = {
        "wall_s": 1000.0,
        "records_per_s": 250.0,
        "client_rate": 5000.0,
        "peak_rss_tree_mb": 900.0,
        "report_summary": {"created": 250_000},
        "requests_per_written_record": {"create": {"per_written": 1.04}},
    }
    text = markdown({"initial_load": load})

    assert "## Initial load" in text
    # 250 records/s against Data Import's 250,000 in 92 minutes (45.3/s)
    assert "| 250000 | 1000.0 | 250 | 5.5x | 1.040 | 5000.0 | 900.0 |" in text


def test_a_file_without_the_mrc_suffix_is_named_so_for_the_inbox(tmp_path: Path) -> None:
    import run

    source = tmp_path / "BooksAll.2016.part01.utf8"
    source.write_bytes(SAMPLE.read_bytes())
    old_cache = run.CACHE
    run.CACHE = tmp_path / "cache"
    try:
        named = run.slice_of(source, run.record_count(source))
    finally:
        run.CACHE = old_cache
    assert named.name == "BooksAll.2016.part01.utf8.mrc"
    assert named.stat().st_ino == source.stat().st_ino  # a link, not a copy


# A task process as LocalExecutor makes one: its worker, retitled with the task instance id,
# forks the task runner, retitled "airflow worker -- <id>", which does the work.
_TASK_TREE = """
import os, setproctitle, time
setproctitle.setproctitle("airflow worker -- LocalExecutor: ti-0001")
if os.fork() == 0:
    setproctitle.setproctitle("airflow worker -- ti-0001")
    blob = bytearray(64 << 20)  # a peak the runner's VmHWM keeps after it is freed
    del blob
    end = time.process_time() + 0.8
    while time.process_time() < end:
        pass
    os._exit(0)
os.wait()
"""


def test_cpu_split_names_a_task_runner_by_its_task_instance_id_and_keeps_its_peak() -> None:
    from cpusplit import CpuSplit

    split = CpuSplit().start()
    subprocess.run([sys.executable, "-c", _TASK_TREE], check=True, timeout=60)
    split.stop()
    summary = split.summary({"ti-0001": "commit_chunk"})

    task = summary["tasks"]["commit_chunk"]
    assert task["count"] == 1
    assert task["cpu_s"] >= 0.5  # sampled every 0.25 s: the last interval may be missed
    assert task["peak_rss_mib"] >= 64
    assert summary["cpu_s_by_kind"]["task"] == task["cpu_s"]
