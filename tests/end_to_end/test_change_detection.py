"""The demo DAG on a re-delivered file with 5% of its records modified: only those are written."""

from __future__ import annotations

import json
from typing import Any

import pymarc
import pytest
from pymarc import Field, Indicators, Record, Subfield

from catalog_sync.config import load_vendors
from catalog_sync.paths import REPO_ROOT
from tests.end_to_end.harness import DemoRun

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
BLANK = Indicators(" ", " ")


def read_sample(limit: int | None = None) -> list[Record]:
    with SAMPLE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None]
    return records[:limit] if limit else records


def modify_every_20th(records: list[Record]) -> list[str]:
    """Edit 5% of the real records in place (a new title or an added note); their 001s."""
    touched = []
    for i in range(0, len(records), 20):
        if i % 40 == 0:
            records[i]["245"]["a"] = f"{records[i]['245']['a']} (revised edition)"
        else:
            records[i].add_ordered_field(
                Field("500", BLANK, [Subfield("a", "Vendor note added on re-delivery.")])
            )
        touched.append(records[i]["001"].value().strip())
    return touched


def deliver(demo: DemoRun, records: list[Record], name: str) -> None:
    for old in demo.inbox.iterdir():
        old.unlink()
    (demo.inbox / name).write_bytes(b"".join(r.as_marc() for r in records))


def run_demo(**conf: Any) -> Any:
    from catalog_sync_airflow.factory import build_vendor_dag

    return build_vendor_dag(load_vendors()["demo"]).test(run_conf={"force": True, **conf})


def test_five_percent_modified_records_are_exactly_the_updates_and_a_dry_run_writes_nothing(
    demo: DemoRun,
) -> None:
    records = read_sample()
    deliver(demo, records, "delivery-1.mrc")
    assert run_demo().state == "success"
    ids = {b["control_number"]: b["biblio_id"] for b in demo.stored()}
    loaded = len(demo.writes())
    touched = modify_every_20th(records)
    deliver(demo, records, "delivery-2.mrc")

    dry = run_demo(dry_run=True)

    assert dry.state == "success"
    assert len(demo.writes()) == loaded
    diff_dir = demo.home / "reports" / "demo" / "latest" / "diffs"
    diffs = [json.loads(line) for f in diff_dir.glob("*.jsonl") for line in f.open()]
    assert sorted(d["record_key"].split(":")[-1] for d in diffs) == sorted(touched)
    assert {tuple(f["tag"] for f in d["fields"]) for d in diffs} == {("245",), ("500",)}

    real = run_demo()

    assert real.state == "success"
    writes = demo.writes()[loaded:]
    assert len(touched) == 50
    assert sorted(w["record_id"] for w in writes) == sorted(ids[n] for n in touched)
    assert {w["method"] for w in writes} == {"PUT"}
    summary = demo.summary()
    assert (summary["updated"], summary["unchanged"], summary["created"]) == (50, 950, 0)
