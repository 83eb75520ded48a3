"""A local inbox refuses the file names an SFTP or HTTPS delivery would: unread, with a code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog_sync.changes.state import StateStore
from catalog_sync.config import load_vendors
from catalog_sync.paths import layout
from catalog_sync.pipeline.fetch import FetchResult, fetch_deliveries
from catalog_sync.pipeline.report import write_report

RECORD = Path(__file__).resolve().parents[1] / "fixtures" / "delivery" / "one.mrc"
# Names a vendor can give a file in a folder we read (a file system holds each of them): a
# line break forging a summary line, a terminal escape, a name of dots, a leading dash, Windows
# separators and a Latin-1 name, as its bytes; each holds a real record.
HOSTILE = {
    b"x.mrc\nrun summary: records=0 accepted=0 rejected=0.mrc": "control character",
    b"\x1b[2Jclear.mrc": "control character",
    b"...mrc": "starts with a dot",
    b"..\\..\\escaped.mrc": "path separator",
    b"-rf.mrc": "starts with a dash",
    b"caf\xe9.mrc": "not valid Unicode",
}


@pytest.fixture
def inbox_run(tmp_path: Path) -> tuple[FetchResult, Path]:
    home = layout(tmp_path / "home")
    vendor = load_vendors()["demo"]
    inbox = vendor.inbox_path(home.root)
    inbox.mkdir(parents=True)
    (inbox / "acme_a.mrc").write_bytes(RECORD.read_bytes())
    for name in HOSTILE:
        with open(os.path.join(os.fsencode(inbox), name), "wb") as handle:
            handle.write(RECORD.read_bytes())
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    vendor = vendor.model_copy(
        update={"source": vendor.source.model_copy(update={"patterns": ["*"]})}
    )
    return fetch_deliveries(vendor, home, state), home.landing


def test_hostile_inbox_names_are_refused_as_unsafe_names_and_only_the_plain_one_lands(
    inbox_run: tuple[FetchResult, Path],
) -> None:
    result, landing = inbox_run

    assert [f.name for f in result.files] == ["acme_a.mrc"]
    shown = {n.decode("utf-8", "backslashreplace"): why for n, why in HOSTILE.items()}
    assert sorted(result.refused) == sorted(shown)
    for name, why in shown.items():
        assert result.refused[name].startswith("unsafe name") and why in result.refused[name]
    assert set(result.refused_codes.values()) == {"unsafe_name"}
    assert [p.name for p in landing.rglob("*") if p.is_file()] == ["acme_a.mrc"]


def test_refused_inbox_names_travel_in_xcom_and_reach_the_report_as_inert_lines(
    inbox_run: tuple[FetchResult, Path], tmp_path: Path
) -> None:
    result, _ = inbox_run
    # XCom carries the result as JSON: a name that is not UTF-8 must not break it.
    carried = FetchResult.model_validate_json(result.model_dump_json())
    assert carried == result

    _, out = write_report(
        layout(tmp_path / "home"), "demo", "manual__1", carried.files, [], [],
        refused=carried.refused_codes,
    )  # fmt: skip

    lines = (out / "report.txt").read_text("utf-8").splitlines()
    assert "  caf\\\\xe9.mrc: unsafe_name" in lines
    assert "  -rf.mrc: unsafe_name" in lines
    assert "  x.mrc\\nrun summary: records=0 accepted=0 rejected=0.mrc: unsafe_name" in lines
    assert [line for line in lines if line.startswith("run summary:")] == [lines[-1]]
    assert all(line.isprintable() for line in lines)


def test_a_link_out_of_the_inbox_is_refused_and_one_inside_it_lands(tmp_path: Path) -> None:
    home = layout(tmp_path / "home")
    vendor = load_vendors()["demo"]
    inbox = vendor.inbox_path(home.root)
    inbox.mkdir(parents=True)
    # A file elsewhere on the host (a real record, so only the link can be the reason).
    elsewhere = tmp_path / "elsewhere.mrc"
    elsewhere.write_bytes(RECORD.read_bytes())
    (inbox / "acme_out.mrc").symlink_to(elsewhere)
    (inbox / "kept").mkdir()
    (inbox / "kept" / "real.mrc").write_bytes(RECORD.read_bytes())
    (inbox / "acme_in.mrc").symlink_to(inbox / "kept" / "real.mrc")
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    vendor = vendor.model_copy(
        update={"source": vendor.source.model_copy(update={"patterns": ["acme_*"]})}
    )

    result = fetch_deliveries(vendor, home, state)

    assert [f.name for f in result.files] == ["acme_in.mrc"]
    assert result.refused_codes == {"acme_out.mrc": "outside_inbox"}
    assert "outside the inbox" in result.refused["acme_out.mrc"]
    landed = [p.name for p in home.landing.rglob("*") if p.is_file()]
    assert landed == ["acme_in.mrc"]
