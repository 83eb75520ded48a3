"""catalog_sync_revert puts the ILS back as before a run, record by record; re-running is safe.

Run for each ILS flavour: Koha, and FOLIO (instances with their MARC in SRS). What the ILS
holds is read back through its own API and compared by content, per control number: a record
the run deleted comes back as a new ILS record, with a new id.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pymarc import Record

from catalog_sync.changes.revert import revert_run
from catalog_sync.config import load_vendors
from catalog_sync.ils import open_client
from catalog_sync.ils.client import ILSClient
from tests.end_to_end.ils_under_test import IlsUnderTest, VendorRun
from tests.end_to_end.test_change_detection import modify_every_20th, read_sample

pytestmark = pytest.mark.slow

# FOLIO reads each record back as two requests (instance, SRS): fewer records there.
RECORDS = {"koha": 200, "folio": 80}


def contents(ils: IlsUnderTest) -> dict[str | None, tuple[str, ...] | None]:
    """Every record's content by its 001; each 001 held exactly once."""
    held = ils.held()
    assert ils.copies_per_control_number() == Counter({h.control_number: 1 for h in held})
    return {h.control_number: h.fields for h in held}


def mark_deleted(records: list[Record], *positions: int) -> list[str]:
    """The vendor's delete notices (leader/05 = d) for the records at `positions`; their 001s."""
    for i in positions:
        records[i].leader.record_status = "d"
    return [records[i]["001"].value().strip() for i in positions]


def test_reverting_runs_restores_the_ils_record_by_record_and_is_safe_to_repeat(
    vendor_run: VendorRun,
) -> None:
    ils = vendor_run.ils
    records = read_sample(RECORDS[ils.flavour])
    vendor_run.deliver(records, "delivery-1.mrc")
    first = vendor_run.run()
    assert first.state == "success"
    before = contents(ils)
    updated = modify_every_20th(records)
    deleted = mark_deleted(records, 3, 7)
    vendor_run.deliver(records, "delivery-2.mrc")
    second = vendor_run.run(approve_deletes=True)
    summary = vendor_run.summary()
    assert second.state == "success"
    assert (summary["updated"], summary["deleted"]) == (len(updated), len(deleted))
    assert set(before) - set(contents(ils)) == set(deleted)

    assert vendor_run.revert(second.run_id).state == "success"

    assert contents(ils) == before  # deleted ones re-created, updated ones put back
    writes = len(ils.control.writes())
    assert vendor_run.revert(second.run_id).state == "success"  # again: nothing left to do
    assert len(ils.control.writes()) == writes

    assert vendor_run.revert(first.run_id).state == "success"

    assert ils.held() == []
    # The reverted run's file loads again, as new: the state forgot what was reverted.
    vendor_run.deliver(read_sample(RECORDS[ils.flavour]), "delivery-1.mrc")
    assert vendor_run.run().state == "success"
    assert vendor_run.summary()["created"] == RECORDS[ils.flavour]


class _Died(Exception):
    """The revert's worker stopped right after the ILS saved a re-created record."""


class _DiesAfterRecreate:
    """The real client; the process 'dies' once a create has reached the ILS."""

    def __init__(self, inner: ILSClient) -> None:
        self.inner = inner

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        await self.inner.create_biblio(marcxml, correlation_id=correlation_id)
        raise _Died

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_revert_retried_after_recreating_a_deleted_record_adopts_that_copy(
    vendor_run: VendorRun,
) -> None:
    from catalog_sync_airflow.runtime import task_runtime

    ils = vendor_run.ils
    records = read_sample(10)
    vendor_run.deliver(records, "delivery-1.mrc")
    assert vendor_run.run().state == "success"
    before = contents(ils)
    [gone] = mark_deleted(records, 4)
    vendor_run.deliver(records, "delivery-2.mrc")
    second = vendor_run.run(approve_deletes=True)
    assert second.state == "success" and gone not in contents(ils)
    conn_id = load_vendors()[vendor_run.vendor].ils_conn_id
    state = task_runtime(vendor_run.vendor).state()

    async def revert(dies: bool) -> str:
        async with open_client(ils.settings(conn_id)) as real:
            client: Any = _DiesAfterRecreate(real) if dies else real
            report = await revert_run(second.run_id, vendor_run.vendor, {conn_id: client}, state)
            return report.line()

    with pytest.raises(_Died):
        asyncio.run(revert(dies=True))
    assert contents(ils) == before  # re-created, but the revert did not live to note it

    line = asyncio.run(revert(dies=False))

    assert "recreated=0" in line and "already_reverted=1" in line, line
    assert contents(ils) == before  # the copy found by its stamp, not made a second time
