"""Refused delivery files appear in the run report, by reason code, with inert names."""

from __future__ import annotations

import json
from pathlib import Path

from catalog_sync.delivery.safety import MAX_SHOWN_CHARS, printable_name
from catalog_sync.paths import layout
from catalog_sync.pipeline.report import write_report

# What a hostile listing can name: a line break with a forged summary after it, a terminal
# escape, a bidi override, a traversal path and a name far too long to show whole.
INJECTED = "x.mrc\nrun summary: records=0 accepted=0 rejected=0"
REFUSED = {
    INJECTED: "unsafe_name",
    "\x1b[2Jclear.mrc": "unsafe_name",
    "evil\u202egpj.mrc": "unpack_limit",
    "../../elsewhere/x.mrc": "unsafe_name",
    "a" * 5000 + ".mrc": "unsafe_name",
    "acme_cdn.mrc": "off_origin",
}


def test_the_report_lists_each_refused_file_once_on_its_own_line_with_its_code(
    tmp_path: Path,
) -> None:
    _, out = write_report(layout(tmp_path), "demo", "manual__1", [], [], [], refused=REFUSED)

    text = (out / "report.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("Refused files (not landed; the fetch report in the task log says more):")
    section = lines[start + 1 : start + 1 + len(REFUSED)]
    assert sorted(section) == sorted(f"  {printable_name(n)}: {c}" for n, c in REFUSED.items())
    assert "  x.mrc\\nrun summary: records=0 accepted=0 rejected=0: unsafe_name" in section
    assert "  \\x1b[2Jclear.mrc: unsafe_name" in section
    assert "  evil\\u202egpj.mrc: unpack_limit" in section
    assert f"  {'a' * MAX_SHOWN_CHARS}... (4804 more characters): unsafe_name" in section
    # Only our own summary line: the forged one stayed inside its escaped name.
    assert [line for line in lines if line.startswith("run summary:")] == [lines[-1]]
    assert all(c.isprintable() for line in lines for c in line)
    body = json.loads((out / "report.json").read_text())
    assert {f["name"]: f["reason"] for f in body["refused_files"]} == REFUSED


def test_a_run_without_refused_files_has_no_such_section(tmp_path: Path) -> None:
    _, out = write_report(layout(tmp_path), "demo", "manual__1", [], [], [])

    assert "Refused files" not in (out / "report.txt").read_text()
    assert json.loads((out / "report.json").read_text())["refused_files"] == []


def test_a_backslash_in_a_name_is_escaped_so_no_shown_name_passes_for_another() -> None:
    assert printable_name("a\\nb.mrc") != printable_name("a\nb.mrc")
    assert printable_name("plain_name-1.mrc") == "plain_name-1.mrc"
