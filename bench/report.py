"""Benchmark results as JSON, a Markdown table and a PNG chart, with the targets checked."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cpusplit import table as cpu_table
from pngchart import bar_chart

STAGE_LABELS = {
    "pymarc": "bare pymarc iteration (MARCReader)",
    "frame": "frame: iter_chunk (record boundaries)",
    "parse": "parse: frame_fields (leader, directory)",
    "validate": "validate: MARC 21 rule checks",
    "prepare": "prepare_record (parse+validate+normalize)",
    "mask": "mask: Masker.mask_record",
    "fingerprint": "fingerprint: record_key + record_fingerprint",
    "diff": "diff: field-level diff (issue 5)",
    "cpu_stage": "CPU stage: prepare + key + fingerprint",
    "process_chunk": "process_chunk (real, incl. staging I/O)",
}
TARGET_PROCESS_RATIO = 0.8
TARGET_TASK_MB = 300.0
TARGET_COMMIT_SHARE = 0.95
TARGET_429_SHARE = 0.01
# Issue 17: daily file end to end within 1.5 x (pymarc pass + changed / rate) + 60 s.
BUDGET_FACTOR = 1.5
CHART_CLIP = 3.0


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value and whether it was met (None: not measured)."""
    rows: list[dict[str, Any]] = []
    stages = results.get("stages", {}).get("stages", {})
    pc = stages.get("process_chunk", {}).get("ratio_to_pymarc")
    rows.append(
        {
            "target": "process_chunk >= 80% of bare pymarc per core",
            "measured": pc,
            "met": None if pc is None else pc >= TARGET_PROCESS_RATIO,
        }
    )
    e2e = results.get("e2e", {})
    changed = e2e.get("changed", {})
    pymarc_rate = stages.get("pymarc", {}).get("records_per_s")
    daily = results.get("daily", {})
    if daily.get("wall_s") and daily.get("budget_s"):
        rows.append(
            {
                "target": f"daily file ({daily['records']:,} records, 5% changed, embedded "
                "scheduler) <= 1.5 x (pymarc pass + changed / rate limit) + 60 s",
                "measured": f"{daily['wall_s']:.1f} s (budget {daily['budget_s']:.1f} s)",
                "met": daily["wall_s"] <= daily["budget_s"],
            }
        )
    elif changed.get("wall_s") and pymarc_rate and e2e.get("rate_limit"):
        budget = BUDGET_FACTOR * (
            e2e["records"] / pymarc_rate + e2e["changed_records"] / e2e["rate_limit"]
        )
        budget += 60
        rows.append(
            {
                "target": f"end to end ({e2e['records']:,} records, `dags test`) <= 1.5 x "
                "(pymarc pass + changed / rate limit) + 60 s",
                "measured": f"{changed['wall_s']:.1f} s (budget {budget:.1f} s)",
                "met": changed["wall_s"] <= budget,
            }
        )
    else:
        rows.append({"target": "end to end budget", "measured": None, "met": None})
    split_tasks = (daily.get("row") or {}).get("cpu_split", {}).get("tasks", {})
    tasks = changed.get("tasks", {})
    if split_tasks:  # one task process each, under the scheduler: the figure the target means
        name, worst_task = max(split_tasks.items(), key=lambda kv: kv[1]["peak_rss_mib"])
        rows.append(
            {
                "target": "peak memory of any task < 300 MB",
                "measured": f"{worst_task['peak_rss_mib']:.0f} MiB ({name}, the task runner "
                f"process's VmHWM, daily file, {worst_task['count']:.0f} runs)",
                "met": worst_task["peak_rss_mib"] * 1.048576 < TARGET_TASK_MB,
            }
        )
    elif tasks:
        worst = max(tasks.items(), key=lambda kv: kv[1]["peak_rss_mb"])
        rows.append(
            {
                "target": "peak memory of any task < 300 MB",
                "measured": f"{worst[1]['peak_rss_mb']} MB ({worst[0]}, Airflow process included)",
                "met": worst[1]["peak_rss_mb"] < TARGET_TASK_MB,
            }
        )
    else:
        rows.append({"target": "peak memory of any task < 300 MB", "measured": None, "met": None})
    for row in [*results.get("production", {}).get("rows", []), daily.get("row") or {}]:
        rows += share_targets(row)
    share = results.get("commit", {}).get("share_of_rate_limit")
    rows.append(
        {
            "target": "commit >= 95% of the rate limit",
            "measured": share,
            "met": None if share is None else share >= TARGET_COMMIT_SHARE,
        }
    )
    return rows


def share_targets(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A scheduler run's share of the rate limit: over the whole commit window (task start-up
    included) and while requests flow (at least one commit task between its first and last
    request), with its 429s; the issue's target is >= 95% with < 1% 429s."""
    if row.get("mode") not in ("embedded", "celery") or not row.get("share_of_rate_limit"):
        return []
    what = (
        f"{row['mode']} at {row['rate_limit']:g} req/s, 1 in {row.get('change_every', 20)} changed"
    )
    requests = row.get("ils_requests_total") or 0
    too_many = (row.get("status_429") or 0) > TARGET_429_SHARE * max(1, requests)
    out = [
        {
            "target": f"{what}: rate share over the commit window >= 95%, < 1% 429s",
            "measured": f"{row['share_of_rate_limit']:.1%}, 429s {row.get('status_429')}",
            "met": row["share_of_rate_limit"] >= TARGET_COMMIT_SHARE and not too_many,
        }
    ]
    steady = row.get("share_while_requesting")
    if steady is not None:
        out.append(
            {
                "target": f"{what}: rate share while requests flow >= 95% "
                f"(fixed overhead {row.get('fixed_overhead_s')} s apart)",
                "measured": f"{steady:.1%}",
                "met": steady >= TARGET_COMMIT_SHARE and not too_many,
            }
        )
    return out


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def markdown(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    lines = [
        f"# Catalog Sync benchmark — {results.get('mode')} run, {results.get('started_at')}",
        "",
        f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}, {m.get('ram_gib')} GiB RAM, "
        f"{m.get('os')}; Python {m.get('python')}. Code: {results.get('code')}. "
        f"Input: {results.get('input', {}).get('file')}.",
        "",
        "Load average (shared machine; other engineers' tests ran alongside): "
        + ", ".join(f"{k} {v['load1']}" for k, v in results.get("load", {}).items())
        + ". All timings are best of N interleaved rounds, single process (= per core).",
        "",
    ]
    for update in results.get("updated", []):
        sections = ", ".join(update.get("sections", []))
        lines += [
            f"Sections {sections} re-run at {update.get('at')} on code {update.get('code')}.",
            "",
        ]
    stage_block = results.get("stages", {})
    if stage_block:
        lines += [
            f"## Stages ({stage_block.get('records'):,} records, "
            f"best of {stage_block.get('reps')})",
            "",
            "| stage | records/s per core | µs/record | ratio to bare pymarc | note |",
            "|---|---:|---:|---:|---|",
        ]
        for name, s in stage_block.get("stages", {}).items():
            note = (
                s.get("note", "")
                if s.get("status") == "measured"
                else (f"**{s.get('status')}**: {s.get('note', '')}")
            )
            lines.append(
                f"| {STAGE_LABELS.get(name, name)} | {_fmt(s.get('records_per_s'))} | "
                f"{_fmt(s.get('us_per_record'), 1)} | {_fmt(s.get('ratio_to_pymarc'), 2)} | "
                f"{note} |"
            )
        lines.append("")
    if results.get("scaling"):
        lines += [
            "## Scaling",
            "",
            "| records | pymarc µs/rec | process_chunk µs/rec | process_chunk s | ratio |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in results["scaling"]:
            p, c = row["pymarc"], row["process_chunk"]
            lines.append(
                f"| {row['records']:,} | {_fmt(p['us_per_record'], 1)} | "
                f"{_fmt(c['us_per_record'], 1)} | {_fmt(c['seconds'], 1)} | "
                f"{_fmt(c['ratio_to_pymarc'], 2)} |"
            )
        lines.append("")
    if results.get("pythons"):
        lines += [
            "## CPU stage by Python version",
            "",
            "| Python | pymarc rec/s | prepare_record rec/s | fingerprint rec/s | "
            "CPU stage rec/s | CPU stage / pymarc | note |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for row in results["pythons"]:
            st = row.get("stages", {})
            lines.append(
                f"| {row.get('python')} | {_fmt(st.get('pymarc', {}).get('records_per_s'))} | "
                f"{_fmt(st.get('prepare', {}).get('records_per_s'))} | "
                f"{_fmt(st.get('fingerprint', {}).get('records_per_s'))} | "
                f"{_fmt(st.get('cpu_stage', {}).get('records_per_s'))} | "
                f"{_fmt(st.get('cpu_stage', {}).get('ratio_to_pymarc'), 2)} | "
                f"{row.get('note', '')} |"
            )
        lines.append("")
    if results.get("gc"):
        g = results["gc"]
        lines += [
            f"## Garbage collector settings (Python {g.get('python')}, {g.get('records'):,} "
            f"records, modes interleaved in one process, best of {g.get('reps')})",
            "",
            "| gc mode | pymarc rec/s | vs default | process_chunk rec/s | vs default | "
            "process_chunk time in collector | collections per pass |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for mode, st in g.get("modes", {}).items():
            p, c = st.get("pymarc", {}), st.get("process_chunk", {})
            lines.append(
                f"| {mode} | {_fmt(p.get('records_per_s'))} | {_pct(p.get('vs_default'))} | "
                f"{_fmt(c.get('records_per_s'))} | {_pct(c.get('vs_default'))} | "
                f"{_pct(c.get('gc_share'))[1:]} | {_fmt(c.get('collections_per_run'), 0)} |"
            )
        lines.append("")
    if results.get("commit"):
        c = results["commit"]
        lines += [
            "## ILS commit throughput (bench/ils_bench.py)",
            "",
            f"{c['writes']} creates from {c['processes']} processes sharing one Redis "
            f"token bucket, emulator rate limit {c['rate_limit']} req/s: "
            f"**{c['throughput_per_s']} writes/s = {c['share_of_rate_limit']:.1%} of the "
            f"limit**; 429s {c['rate_limited_429']} of {c['requests']} requests; "
            f"event-loop lag p99 {c['loop_lag_ms_p99']} ms.",
            "",
        ]
    if results.get("e2e"):
        lines += _e2e_markdown(results["e2e"])
    if results.get("production"):
        p = results["production"]
        lines += [
            "## Deployments (bench/production.py)",
            "",
            f"{p.get('records')} records, {p.get('records_per_chunk')} per chunk; share = ILS "
            "requests while commit tasks run / (rate limit x that window).",
            "",
            p.get("table", ""),
            "",
        ]
    if results.get("daily", {}).get("wall_s"):
        lines += _daily_markdown(results["daily"])
    if results.get("initial_load", {}).get("wall_s"):
        lines += _initial_load_markdown(results["initial_load"])
    lines += [
        "## Targets (reported, not asserted)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for t in targets(results):
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {_fmt(t['measured'], 3)} | {met} |")
    if results.get("errors"):
        lines += ["", "## Sections that failed", ""]
        lines += [f"- {k}: `{v[-300:]}`" for k, v in results["errors"].items()]
    return "\n".join(lines) + "\n"


def _daily_markdown(d: dict[str, Any]) -> list[str]:
    row = d.get("row", {})
    return [
        f"## Daily file: {d['records']:,} records, {d['changed_records']:,} changed (5%), "
        "embedded scheduler (LocalExecutor)",
        "",
        "| wall s | records/s | budget s | requests per written record | rate req/s | "
        "share over commit window | share while requesting | fixed overhead s | 429 | "
        "load before / after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {d['wall_s']} | {_fmt(d.get('records_per_s'))} | {d.get('budget_s')} "
        f"| {_fmt(d.get('requests_per_written_record'), 2)} | {row.get('rate_limit')} "
        f"| {_fmt(row.get('share_of_rate_limit'), 3)} "
        f"| {_fmt(row.get('share_while_requesting'), 3)} | {row.get('fixed_overhead_s')} "
        f"| {row.get('status_429')} | {row.get('load_before', {}).get('load1')} / "
        f"{row.get('load_after', {}).get('load1')} |",
        "",
        f"Budget = 1.5 x (pymarc pass {d.get('pymarc_pass_s')} s + {d['changed_records']:,} "
        f"/ {row.get('rate_limit')} req/s) + 60 s. Run report: {row.get('report_summary')}.",
        "",
        *_cpu_split_markdown(row, d["wall_s"]),
    ]


def _cpu_split_markdown(row: dict[str, Any], wall_s: float) -> list[str]:
    """Where the run's CPU went (bench/cpusplit.py), and py-spy's top functions if recorded."""
    split = row.get("cpu_split")
    if not split:
        return []
    lines = ["### Where the CPU went", "", cpu_table(split, wall_s, os.cpu_count() or 1), ""]
    for kind, prof in row.get("pyspy", {}).items():
        # Entry points (the process's main, the server loop) hold nearly every sample: skipped.
        top = ", ".join(
            f"{f} {share:.0%}" for f, _, share in prof["project_inclusive"] if share < 0.9
        )
        lines += [f"py-spy, {kind} ({prof['samples']:,} samples): {top}.", ""]
    return lines


# FOLIO Data Import's published figure: 250,000 records in 1 h 32 min (issue 17 item 4).
DATA_IMPORT_RECORDS_PER_S = 250_000 / (92 * 60)


def _initial_load_markdown(d: dict[str, Any]) -> list[str]:
    summary = d.get("report_summary", {})
    per_create = d.get("requests_per_written_record", {}).get("create", {})
    rate = d.get("records_per_s")
    versus = f"{rate / DATA_IMPORT_RECORDS_PER_S:.1f}x" if rate else "-"
    return [
        "## Initial load: every record a create into an empty Koha (the daily file's seed)",
        "",
        "| records created | wall s | records/s | vs FOLIO Data Import (45.3/s) | "
        "requests per create | client rate req/s | peak RSS of the run's process tree MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {summary.get('created')} | {d.get('wall_s')} | {_fmt(rate)} | {versus} "
        f"| {_fmt(per_create.get('per_written'), 3)} | {d.get('client_rate')} "
        f"| {d.get('peak_rss_tree_mb')} |",
        "",
        "One `airflow dags test` run (tasks one after another), the client's rate limit lifted "
        "so the pipeline's own speed shows. Run report: " + str(summary) + ".",
        "",
    ]


def _e2e_markdown(e: dict[str, Any]) -> list[str]:
    ch = e.get("changed", {})
    seed = e.get("seed", {})
    counters = ch.get("emulator_counters", {})
    summary = ch.get("report_summary") or ch.get("report_totals", {}).get("summary", {})
    commit_s = ch.get("tasks", {}).get("commit_chunk", {}).get("seconds")
    seed_text = "reused from cache" if "from_cache" in seed else f"{seed.get('wall_s')} s"
    lines = [
        f"## End to end: `airflow dags test`, {e.get('records'):,} records, "
        f"{e.get('changed_records'):,} changed (5%), {e.get('records_per_chunk')} per chunk",
        "",
        f"Seed run: {seed_text}. "
        f"Measured run: wall **{ch.get('wall_s')} s** "
        f"({e.get('records', 0) / ch['wall_s'] if ch.get('wall_s') else 0:,.0f} records/s), "
        f"exit {ch.get('returncode')}; report: {summary}; emulator: {counters}; "
        f"client rate limit {e.get('rate_limit')} req/s"
        + (
            f", commit tasks {counters.get('requests', 0) / commit_s:.0f} req/s while running "
            f"({counters.get('requests', 0) / commit_s / e['rate_limit']:.0%} of the limit)"
            if commit_s and e.get("rate_limit")
            else ""
        )
        + ".",
        *_requests_line(ch.get("requests_per_written_record", {})),
        "",
        "| task | runs | seconds (sum) | peak RSS MB (process tree) | max growth in task MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for task, t in ch.get("tasks", {}).items():
        lines.append(
            f"| {task} | {t['runs']} | {t['seconds']} | {t['peak_rss_mb']} | {t['max_growth_mb']} |"
        )
    return [*lines, ""]


def _requests_line(figures: dict[str, Any]) -> list[str]:
    """The measured run's requests per written record, as its run report counted them."""
    shown = [
        f"{kind} {_fmt(f['per_written'], 2)} ({f['requests']:,} / {f['written']:,})"
        for kind, f in figures.items()
        if f.get("requests")
    ]
    if not shown:
        return []
    return [
        "",
        "Requests per written record (run report, client-side, retries included): "
        + "; ".join(shown)
        + ".",
    ]


def chart(results: dict[str, Any], path: Path) -> Path | None:
    stages = results.get("stages", {}).get("stages", {})
    # Framing runs at tens of times pymarc's speed; clipped so the others stay readable.
    bars = [
        (
            name,
            min(float(s["ratio_to_pymarc"]), CHART_CLIP),
            f"{s['ratio_to_pymarc']:.2f}X {s['records_per_s']:,.0f}/S",
        )
        for name, s in stages.items()
        if s.get("status") == "measured" and s.get("ratio_to_pymarc") is not None
    ]
    if not bars:
        return None
    title = (
        f"RECORDS/S PER CORE AS RATIO TO BARE PYMARC - {results.get('mode')} "
        f"{results.get('started_at', '')[:10]}"
    )
    return bar_chart(
        path,
        title,
        bars,
        reference=TARGET_PROCESS_RATIO,
        reference_label="0.8 TARGET",
        highlight_below=TARGET_PROCESS_RATIO,
    )


def write_outputs(results: dict[str, Any], out_dir: Path) -> list[Path]:
    results["targets"] = targets(results)
    paths = [out_dir / "results.json", out_dir / "results.md"]
    paths[0].write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    paths[1].write_text(markdown(results), encoding="utf-8")
    png = chart(results, out_dir / "stages.png")
    return paths + ([png] if png else [])
