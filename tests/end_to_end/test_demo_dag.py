"""The demo vendor's DAG, run with dag.test() against the real emulator and a real Redis."""

from __future__ import annotations

import shutil
from pathlib import Path

import pymarc
import pytest

from catalog_sync.paths import REPO_ROOT
from tests.end_to_end.harness import DemoRun

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"


def control_numbers(path: Path) -> list[str]:
    with path.open("rb") as fh:
        return [
            r["001"].data.strip() for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None
        ]


def test_demo_dag_loads_every_record_of_the_vendor_file_into_the_ils(demo: DemoRun) -> None:
    shutil.copy(SAMPLE, demo.inbox / SAMPLE.name)
    expected = control_numbers(SAMPLE)

    run = demo.run()

    assert run.state == "success"
    stored = demo.stored()
    assert sorted(b["control_number"] for b in stored) == sorted(expected)
    assert len({b["biblio_id"] for b in stored}) == len(expected)
    writes = demo.writes()
    assert [w["method"] for w in writes].count("POST") == len(expected)
    assert len(writes) == len(expected)
    assert demo.summary() == {
        "records": 1000, "accepted": 1000, "rejected": 0, "created": 1000,
        "updated": 0, "deleted": 0, "unchanged": 0, "failed": 0, "held": 0,
    }  # fmt: skip


def test_second_run_of_the_same_file_writes_nothing(demo: DemoRun) -> None:
    shutil.copy(SAMPLE, demo.inbox / SAMPLE.name)
    assert demo.run().state == "success"
    writes_after_first = len(demo.writes())

    assert demo.run(force=True).state == "success"

    assert len(demo.writes()) == writes_after_first
    summary = demo.summary()
    assert summary["unchanged"] == 1000
    assert summary["created"] == summary["updated"] == summary["deleted"] == 0


def test_a_loaded_file_is_skipped_unless_forced(demo: DemoRun) -> None:
    shutil.copy(SAMPLE, demo.inbox / SAMPLE.name)
    assert demo.run().state == "success"

    assert demo.run(force=False).state == "success"

    assert demo.summary()["records"] == 0
    report = (demo.home / "reports" / "demo" / "latest" / "report.txt").read_text()
    assert "No new vendor files" in report


@pytest.mark.parametrize(
    ("case", "expected_message"),
    [
        ("missing_inbox", "inbox folder"),
        ("empty_file", "empty"),
        ("not_marc", "not MARC"),
    ],
)
def test_bad_delivery_fails_the_run_with_an_operator_message_and_writes_nothing(
    demo: DemoRun, case: str, expected_message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    if case == "missing_inbox":
        shutil.rmtree(demo.inbox)
    elif case == "empty_file":
        (demo.inbox / "delivery.mrc").write_bytes(b"")
    else:
        # A vendor portal's HTML error page saved under a .mrc name: a real-world mistake.
        (demo.inbox / "delivery.mrc").write_text("<!DOCTYPE html><html><body>Session expired")

    run = demo.run()

    assert run.state == "failed"
    out, err = capfd.readouterr()
    assert expected_message in out + err
    assert demo.writes() == []
    assert not (demo.home / "landing").exists() or not any((demo.home / "landing").iterdir())


def test_a_truncated_bibframe_delivery_fails_fetch_once_with_its_position_and_lands_nothing(
    demo: DemoRun, capfd: pytest.CaptureFixture[str]
) -> None:
    # A real LoC record cut off mid-document, as an interrupted export leaves it.
    real = (REPO_ROOT / "tests" / "fixtures" / "bibframe" / "regression-bibframe.xml").read_bytes()
    (demo.inbox / "delivery.rdf").write_bytes(real[: len(real) // 2])

    run = demo.run()

    assert run.state == "failed"
    fetch = {ti.task_id: ti for ti in run.get_task_instances()}["fetch"]
    # An input error fails at once: one attempt, not up_for_retry and tried twice more.
    assert (fetch.state, fetch.try_number) == ("failed", 1)
    out, err = capfd.readouterr()
    assert "delivery.rdf is not well-formed RDF/XML at line 91, column 91" in out + err
    assert demo.writes() == []
    assert not (demo.home / "landing").exists() or not any((demo.home / "landing").rglob("*"))
