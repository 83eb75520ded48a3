"""Run report as one self-contained HTML page (inline SVG charts, no external assets)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any, NamedTuple

from catalog_sync.models import ChunkRef

_BAR = "#2b6cb0"
_WARN = "#c05621"
_BAD = "#c53030"
_OK = "#2f855a"
_CHANGE_TYPES = (
    ("created", _OK),
    ("updated", _BAR),
    ("deleted", _BAD),
    ("unchanged", "#718096"),
    ("already_applied", "#718096"),  # a part of created/updated/deleted, shown on its own
    ("no_change", "#718096"),
    ("matched", _BAR),
    ("drifted", _WARN),
    ("review", _WARN),
    ("failed", _BAD),
)


class ChunkTiming(NamedTuple):
    """When one commit chunk ran and what it sent; latency when the ILS client measured it."""

    label: str
    started: datetime
    finished: datetime
    records: int
    latency_ms: float | None = None

    @property
    def seconds(self) -> float:
        return max((self.finished - self.started).total_seconds(), 1e-3)


def _num(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _chunk_label(chunk: Mapping[str, Any]) -> str:
    try:
        return ChunkRef.model_validate(chunk.get("chunk", {})).label
    except ValueError:
        return str(chunk.get("chunk", {}).get("chunk_id", "?"))


def bar_chart(title: str, items: Sequence[tuple[str, int | float, str]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value, colour); an empty list says so in words."""
    if not items:
        return f'<p class="empty">{escape(title)}: none in this run.</p>'
    width, label_w, row = 720, 190, 26
    top = max(v for _, v, _ in items) or 1
    height = row * len(items) + 10
    bars = []
    for i, (label, value, colour) in enumerate(items):
        y = 5 + i * row
        w = (width - label_w - 90) * (value / top)
        bars.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
            f'fill="{colour}"><title>{escape(label)}: {value:,}{unit}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{value:,}{escape(unit)}</text>'
        )
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(bars)}</svg>'
    )


def line_chart(title: str, points: Sequence[tuple[float, float]], x_unit: str, y_unit: str) -> str:
    """A polyline with dots over time (x in seconds since the first point)."""
    if not points:
        return f'<p class="empty">{escape(title)}: no timings recorded for this run.</p>'
    width, height, pad = 720, 240, 48
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x_max = max(max(xs), 1e-3)
    y_max = max(max(ys), 1e-3) * 1.1

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            pad + (width - 2 * pad) * (x / x_max),
            height - pad - (height - 2 * pad) * (y / y_max),
        )

    coords = [at(x, y) for x, y in points]
    path = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
    dots = "".join(
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{_BAR}">'
        f"<title>{x:.1f} {escape(x_unit)}: {y:,.1f} {escape(y_unit)}</title></circle>"
        for (cx, cy), (x, y) in zip(coords, points, strict=True)
    )
    axes = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        f'stroke="#4a5568"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="#4a5568"/>'
        f'<text x="{width - pad}" y="{height - pad + 30}" text-anchor="end">'
        f"{escape(x_unit)} (max {x_max:,.1f})</text>"
        f'<text x="{pad}" y="{pad - 10}">{escape(y_unit)} (max {max(ys):,.1f})</text>'
    )
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{axes}'
        f'<polyline points="{path}" fill="none" stroke="{_BAR}" stroke-width="2"/>{dots}</svg>'
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v:,}</td>' if isinstance(v, int) else f"<td>{escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def _header(
    report: Mapping[str, Any], vendor: str, run_id: str, status: str, summary_line: str
) -> str:
    """Title, totals, earlier versions of this run's report and the operator's notes."""
    earlier: list[Mapping[str, Any]] = list(report.get("earlier_versions", []))
    versions = ""
    if earlier:
        items = "".join(
            f"<li><code>{escape(str(v.get('path', '')))}</code> written "
            f"{escape(str(v.get('written_at', '')))}: {escape(str(v.get('summary_line', '')))}</li>"
            for v in earlier
        )
        versions = (
            f'<div id="versions"><p>This is version {len(earlier) + 1} of this run\'s report: '
            "tasks ran again after it was first written. Earlier versions, kept as written in "
            f"the run's report folder:</p><ul>{items}</ul></div>"
        )
    notes = "".join(f"<li>{escape(str(n))}</li>" for n in report.get("notes", []))
    return (
        f"<header><h1>Catalog Sync run report</h1>"
        f'<p>vendor <b id="vendor">{escape(vendor)}</b> &middot; run '
        f'<code id="run-id">{escape(run_id)}</code> &middot; written '
        f"{escape(str(report.get('written_at', '')))}</p>"
        f'<p class="status {status.replace(" ", "-")}" id="summary">'
        f"<b>{escape(status)}</b>: {escape(summary_line)}</p>{versions}"
        + (f'<ul id="notes" class="notes">{notes}</ul>' if notes else "")
        + "</header>"
    )


def render_run_report(
    report: Mapping[str, Any], timeline: Sequence[ChunkTiming] = (), failed_html: str = ""
) -> str:
    """report.json (as written by pipeline.report) -> an HTML page; values are escaped.

    `failed_html` (run_status.failed_tasks_section) goes under the header: tasks that failed
    after this report was written, e.g. a cleared chunk whose re-run failed.
    """
    summary: Mapping[str, Any] = report.get("summary", {})
    chunks: list[Mapping[str, Any]] = list(report.get("chunks", []))
    commits: list[Mapping[str, Any]] = list(report.get("commits", []))
    files: list[Mapping[str, Any]] = list(report.get("files", []))
    vendor, run_id = str(report.get("vendor", "?")), str(report.get("run_id", "?"))

    staged = sum(_num(c.get(k)) for c in chunks for k in ("creates", "updates", "deletes"))
    written = sum(_num(summary.get(k)) for k in ("created", "updated", "deleted"))
    stages = [
        ("files fetched", len(files), _BAR),
        ("records read", _num(summary.get("records")), _BAR),
        ("accepted", _num(summary.get("accepted")), _OK),
        ("rejected", _num(summary.get("rejected")), _BAD),
        ("changes staged", staged, _BAR),
        ("changes written", written, _OK),
        ("write failures", _num(summary.get("failed")), _BAD),
    ]
    change_totals = {k: sum(_num(c.get(k)) for c in commits) for k, _ in _CHANGE_TYPES}
    changes = [(k.replace("_", " "), change_totals[k], col) for k, col in _CHANGE_TYPES]
    reasons: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for c in chunks:
        reasons.update({k: _num(v) for k, v in dict(c.get("reasons", {})).items()})
        warnings.update({k: _num(v) for k, v in dict(c.get("warnings", {})).items()})
    for cm in commits:
        failures.update({k: _num(v) for k, v in dict(cm.get("failures", {})).items()})

    drift: Mapping[str, Any] = report.get("drift") or {}
    drift_fields: Counter[str] = Counter(
        {k: _num(v) for k, v in dict(drift.get("fields", {})).items()}
    )
    drifted = max(change_totals["drifted"], _num(drift.get("records")))

    labels = [_chunk_label(c) for c in chunks]
    chunk_rows = []
    for i, c in enumerate(chunks):
        cm = commits[i] if i < len(commits) else {}
        chunk_rows.append(
            [labels[i], _num(c.get("records_total")), _num(c.get("rejected")),
             _num(cm.get("created")), _num(cm.get("updated")), _num(cm.get("deleted")),
             _num(cm.get("unchanged")), _num(cm.get("failed"))]
        )  # fmt: skip

    ordered = sorted(timeline, key=lambda t: t.started)
    t0 = ordered[0].started if ordered else None
    throughput = [((t.finished - t0).total_seconds(), t.records / t.seconds) for t in ordered if t0]
    latency = [
        ((t.finished - t0).total_seconds(), t.latency_ms)
        for t in ordered
        if t0 and t.latency_ms is not None
    ]
    latency_note = "ILS request latency (ms, mean per chunk)"
    if not latency and ordered and t0:
        # No per-request figures in this run: chunk time per record bounds the ILS latency.
        latency = [
            ((t.finished - t0).total_seconds(), 1000 * t.seconds / max(t.records, 1))
            for t in ordered
        ]
        latency_note = "chunk time per record (ms), an upper bound of ILS latency"
    timing_rows = [
        [t.label, f"{t.started:%H:%M:%S}", f"{t.seconds:,.1f}", t.records,
         f"{t.records / t.seconds:,.1f}"]
        for t in ordered
    ]  # fmt: skip

    files_rows = [
        [str(f.get("name", "")), str(f.get("format", "")), _num(f.get("size")),
         str(f.get("sha256", ""))[:16]]
        for f in files
    ]  # fmt: skip
    failed = _num(summary.get("failed"))
    status = "failures" if failed else ("changed" if written else "no changes")
    summary_line = ", ".join(f"{k} {_num(v):,}" for k, v in summary.items())

    body = "".join(
        [
            _header(report, vendor, run_id, status, summary_line),
            failed_html,
            _section(
                "files",
                "Files",
                _table(["file", "format", "bytes", "sha256 (start)"], files_rows)
                if files_rows
                else "<p class='empty'>No new vendor files in this run.</p>",
            ),
            _section("stages", "Records through the stages", bar_chart("stages", stages)),
            _section("changes", "Change types", bar_chart("change types", changes)),
            _section(
                "rejects",
                "Reject reasons",
                "<h3>Records rejected before the ILS</h3>",
                bar_chart("reject reasons", [(k, v, _BAD) for k, v in reasons.most_common()]),
                "<h3>Records not written (failed)</h3>",
                bar_chart("ILS refusals", [(k, v, _BAD) for k, v in failures.most_common()]),
                "<h3>Warnings (records kept)</h3>",
                bar_chart("warnings", [(k, v, _WARN) for k, v in warnings.most_common()]),
            ),
            _section(
                "drift",
                "Drift",
                f"<p>{drifted:,} record(s) had been edited in the ILS since our last write.</p>",
                bar_chart("drifted fields", [(k, v, _WARN) for k, v in drift_fields.most_common()]),
            ),
            _section(
                "ils",
                "ILS throughput and latency over time",
                "<h3>Throughput (records per second, per commit chunk)</h3>",
                line_chart("throughput", throughput, "seconds into the commit", "records/s"),
                f"<h3>{escape(latency_note)}</h3>",
                line_chart("latency", latency, "seconds into the commit", "ms"),
                _table(["chunk", "started", "seconds", "records", "records/s"], timing_rows)
                if timing_rows
                else "",
            ),
            _section(
                "chunks",
                "Chunks",
                _table(
                    [
                        "chunk",
                        "records",
                        "rejected",
                        "created",
                        "updated",
                        "deleted",
                        "same",
                        "failed",
                    ],
                    chunk_rows,
                ),
            ),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Run report {escape(vendor)} {escape(run_id)}</title>"
        f"<style>{_CSS}</style></head><body>{body}</body></html>"
    )


_CSS = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1a202c;max-width:980px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:1px solid #cbd5e0;"
    "padding-bottom:4px;margin-top:28px}h3{font-size:14px;margin:14px 0 4px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #e2e8f0;"
    "padding:3px 8px;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "svg.chart text{font-size:12px;fill:#2d3748}.empty{color:#718096;font-style:italic}"
    ".status{padding:6px 10px;border-radius:4px;display:inline-block}"
    ".status.changed{background:#ebf8ff}.status.failures{background:#fff5f5}"
    ".status.no-changes{background:#f7fafc}"
)
