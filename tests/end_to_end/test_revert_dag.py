"""catalog_sync_revert puts the ILS back as before a run, record by record; re-running is safe."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pymarc
import pytest

from catalog_sync.changes.fingerprint import ils_comparable
from tests.end_to_end.harness import DemoRun
from tests.end_to_end.test_change_detection import (
    deliver,
    modify_every_20th,
    read_sample,
    run_demo,
)

pytestmark = pytest.mark.slow


def revert(run_id: str) -> Any:
    from catalog_sync_airflow.revert import build_revert_dag

    return build_revert_dag().test(run_conf={"vendor": "demo", "run_id": run_id})


def catalog(demo: DemoRun) -> dict[int, list[str]]:
    """Every ILS record's content, by biblio id: as the ILS returns it, without what Koha
    rebuilds on each save (005, 999, the create stamp), so a restore compares by content."""
    out = {}
    with httpx.Client(auth=("catalog", "catalog-demo"), timeout=10) as http:
        for b in demo.stored():
            response = http.get(
                f"{demo.emulator.url}/api/v1/biblios/{b['biblio_id']}",
                headers={"Accept": "application/marcxml+xml"},
            )
            response.raise_for_status()
            record = pymarc.parse_xml_to_array(io.BytesIO(response.content))[0]
            out[int(b["biblio_id"])] = [str(f) for f in ils_comparable(record).fields]
    return out


def test_reverting_runs_restores_the_ils_record_by_record_and_is_safe_to_repeat(
    demo: DemoRun,
) -> None:
    records = read_sample(200)
    deliver(demo, records, "delivery-1.mrc")
    first = run_demo()
    assert first.state == "success"
    before = catalog(demo)
    modify_every_20th(records)
    deliver(demo, records, "delivery-2.mrc")
    second = run_demo()
    assert second.state == "success" and demo.summary()["updated"] == 10
    assert catalog(demo) != before

    assert revert(second.run_id).state == "success"

    assert catalog(demo) == before
    writes = len(demo.writes())
    assert revert(second.run_id).state == "success"  # again: nothing left to do
    assert len(demo.writes()) == writes

    assert revert(first.run_id).state == "success"

    assert demo.stored() == []
    # The reverted run's file loads again, as new: the state forgot what was reverted.
    assert run_demo().state == "success"
    assert demo.summary()["created"] == 200
