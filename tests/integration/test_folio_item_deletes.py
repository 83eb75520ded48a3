"""FOLIO item deletes go as CQL deletes per batch, and no holdings record of ours is left
without items: real HTTP to the FOLIO emulator, real LoC records, requests counted off the
wire, what FOLIO holds read back through its own storage APIs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pymarc
import pytest
from tests.folio_emulator import Okapi, staff_edit_before
from tests.integration.test_folio_batching import Sent, run
from tests.integration.test_folio_item_batches import ITEM_BATCH, add_all, instances
from tests.integration.test_folio_items import ANNEX, MAIN, item, stored

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils.errors import ILSConflict
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.pipeline.items import ItemProblem, apply_items, plan_items
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
CQL_DELETE = ("DELETE", "/item-storage/items")
CQL_HOLDINGS_DELETE = ("DELETE", "/holdings-storage/holdings")
RECORDS, EACH = 16, 3
# Okapi's HTTP server (Vert.x) refuses a request line over 4,096 bytes.
REQUEST_LINE = 4096
ITEM_CHANGED = "item_changed"  # ils.folio.cqldelete


def all_items(okapi: Okapi) -> list[dict[str, Any]]:
    return stored(okapi, "/item-storage/items", "items", "cql.allRecords=1")


def all_holdings(okapi: Okapi) -> list[dict[str, Any]]:
    return stored(okapi, "/holdings-storage/holdings", "holdingsRecords", "cql.allRecords=1")


def empty_holdings(okapi: Okapi) -> list[str]:
    used = {i["holdingsRecordId"] for i in all_items(okapi)}
    return [h["id"] for h in all_holdings(okapi) if h["id"] not in used]


def test_a_chunks_item_deletes_go_as_one_cql_delete_per_batch(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, RECORDS)

    async def body(ils: FolioAdapter, sent: Sent) -> int:
        await add_all(ils, [o for o in owners for _ in range(EACH)],
                      [f"D-{n}-{k}" for n in range(RECORDS) for k in range(EACH)])  # fmt: skip
        held = await asyncio.gather(*(ils.list_items(o, correlation_id=o) for o in owners))
        sent.clear()

        async def delete_record(n: int) -> None:
            # As pipeline.delete does with `delete_with_items`: a record's items one after
            # another, the chunk's records at once.
            for found in held[n]:
                await ils.delete_item(found.item_id, correlation_id=owners[n])

        await asyncio.gather(*(delete_record(n) for n in range(RECORDS)))
        return sum(sent.values())

    requests, sent = run(folio.url, body, batch_size=64)

    deleted = RECORDS * EACH
    print(f"{requests} requests for {deleted} items deleted: {dict(sent)}")
    assert all_items(okapi) == [] and all_holdings(okapi) == []
    # One CQL delete per round of the records' items, never one DELETE per item (main sent
    # GET + DELETE + GET holdings + retrieve per item, 4.3 requests per item with the
    # holdings deletes). What is left per item is the holdings deletes: one per record.
    assert not [p for m, p in sent if m == "DELETE" and p.startswith("/item-storage/items/")]
    assert 1 <= sent[CQL_DELETE] <= 2 * EACH
    assert requests / deleted < 1.0, (requests, dict(sent))


def test_a_staff_change_between_read_and_delete_keeps_that_item(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, 4)
    barcodes = [f"S-{n}" for n in range(4)]

    async def body(ils: FolioAdapter, _: Sent) -> list[Any]:
        made = await add_all(ils, owners, barcodes)
        # A librarian edits item 2 in FOLIO after we read it, before our delete lands.
        edit = staff_edit_before(okapi, CQL_DELETE, made[2].item_id, {"volume": "v.9"})
        ils.session._http.event_hooks["request"].append(edit)
        return list(
            await asyncio.gather(
                *(ils.delete_item(m.item_id, correlation_id=f"r{n}") for n, m in enumerate(made)),
                return_exceptions=True,
            )
        )

    results, _ = run(folio.url, body, batch_size=64)

    kept = results.pop(2)
    assert isinstance(kept, ILSConflict) and kept.reason == ITEM_CHANGED, kept
    assert results == [None, None, None]
    [left] = all_items(okapi)
    assert left["barcode"] == "S-2" and left["volume"] == "v.9"
    assert [h["instanceId"] for h in all_holdings(okapi)] == [owners[2]]


def test_a_large_batch_of_deletes_is_cut_to_fit_the_request_line(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, 4)
    count = 120  # one batch of deletes: its CQL would not fit one URL
    lines: list[int] = []

    async def body(ils: FolioAdapter, _: Sent) -> None:
        made = await add_all(ils, [owners[n % 4] for n in range(count)],
                             [f"L-{n:03d}" for n in range(count)])  # fmt: skip

        async def measure(request: httpx.Request) -> None:
            if (request.method, request.url.path) == CQL_DELETE:
                lines.append(len(f"DELETE {request.url.raw_path.decode()} HTTP/1.1"))

        ils.session._http.event_hooks["request"].append(measure)
        await asyncio.gather(*(ils.delete_item(m.item_id, correlation_id="c") for m in made))

    run(folio.url, body, batch_size=128)

    assert all_items(okapi) == [] and all_holdings(okapi) == []
    assert 2 <= len(lines) <= 3 and max(lines) <= REQUEST_LINE, lines


def test_a_refused_item_leaves_no_holdings_of_its_own(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    """Two records of a chunk bring one barcode: both plans find it free, one item lands and
    the other is refused; the holdings record made for the refused one goes again."""
    first, second = instances(okapi, loc_records, 2)

    async def body(ils: FolioAdapter, _: Sent) -> list[Any]:
        plans = [
            await plan_items(ils, owner, [item("TWICE-1")], correlation_id=owner)
            for owner in (first, second)
        ]
        return list(
            await asyncio.gather(
                *(apply_items(ils, "ils_folio", owner, plan, correlation_id=owner)
                  for owner, plan in zip((first, second), plans, strict=True)),
                return_exceptions=True,
            )
        )  # fmt: skip

    results, _ = run(folio.url, body, batch_size=64)

    refused = [r for r in results if isinstance(r, ItemProblem)]
    assert len(refused) == 1 and refused[0].reason == "item_barcode_elsewhere", results
    [landed] = all_items(okapi)
    assert empty_holdings(okapi) == []
    assert [h["id"] for h in all_holdings(okapi)] == [landed["holdingsRecordId"]]


def test_an_item_moved_by_a_repeated_barcode_leaves_no_empty_holdings(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    """A record listing one barcode at two locations: the second is refused as taken, found
    on this biblio and moved there; neither location's holdings stays behind empty."""
    [owner] = instances(okapi, loc_records, 1)
    wanted = [item("TWO-PLACES", MAIN), item("TWO-PLACES", ANNEX)]

    async def body(ils: FolioAdapter, _: Sent) -> tuple[int, int]:
        plan = await plan_items(ils, owner, wanted, correlation_id=owner)
        done = await apply_items(ils, "ils_folio", owner, plan, correlation_id=owner)
        return done["created"], done["updated"]

    assert run(folio.url, body, batch_size=64)[0] == (1, 1)
    [moved] = all_items(okapi)
    assert empty_holdings(okapi) == []
    assert [h["id"] for h in all_holdings(okapi)] == [moved["holdingsRecordId"]]


class Killed(Exception):
    """The commit task's process dies here."""


def test_a_kill_between_holdings_and_item_neither_loses_nor_duplicates_on_rerun(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, 3)
    wanted = [item(f"K-{n}") for n in range(3)]

    async def killed(ils: FolioAdapter, _: Sent) -> list[Any]:
        async def die(request: httpx.Request) -> None:
            if (request.method, request.url.path) == ITEM_BATCH:
                raise Killed  # the holdings batch landed; the item batch never leaves

        ils.session._http.event_hooks["request"].append(die)
        return await apply_all(ils)

    async def apply_all(ils: FolioAdapter) -> list[Any]:
        async def one(owner: str, props: dict[str, object]) -> Any:
            plan = await plan_items(ils, owner, [props], correlation_id=owner)
            return await apply_items(ils, "ils_folio", owner, plan, correlation_id=owner)

        return list(
            await asyncio.gather(*(one(o, p) for o, p in zip(owners, wanted, strict=True)),
                                 return_exceptions=True)
        )  # fmt: skip

    first, _ = run(folio.url, killed, batch_size=64)
    assert all(isinstance(r, Killed) for r in first), first
    assert len(all_holdings(okapi)) == 3 and all_items(okapi) == []
    rerun, _ = run(folio.url, lambda ils, _: apply_all(ils), batch_size=64)

    assert [r["created"] for r in rerun] == [1, 1, 1], rerun
    assert sorted(i["barcode"] for i in all_items(okapi)) == ["K-0", "K-1", "K-2"]
    assert empty_holdings(okapi) == [] and len(all_holdings(okapi)) == 3
    writes = [w["resource"] for w in EmulatorControl(folio.url).writes()]
    assert writes.count("holdings_record") == 3 and writes.count("item") == 3


def test_a_holdings_record_staff_fill_in_between_is_kept_and_the_rest_go(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    owners = instances(okapi, loc_records, 3)

    async def body(ils: FolioAdapter, _: Sent) -> list[Any]:
        made = await add_all(ils, owners, ["F-0", "F-1", "F-2"])
        [copy] = stored(okapi, "/item-storage/items", "items", f'id=="{made[1].item_id}"')
        filled = False

        async def staff_add(request: httpx.Request) -> None:
            # Staff add an item to record 1's holdings after we found it empty.
            nonlocal filled
            if (request.method, request.url.path) == CQL_HOLDINGS_DELETE and not filled:
                filled = True
                theirs = {k: v for k, v in copy.items() if k not in ("id", "hrid", "_version",
                                                                     "metadata")}  # fmt: skip
                created = okapi.post("/item-storage/items", {**theirs, "barcode": "STAFF"})
                assert created.status_code == 201, created.text

        ils.session._http.event_hooks["request"].append(staff_add)
        return list(
            await asyncio.gather(
                *(ils.delete_item(m.item_id, correlation_id=f"r{n}") for n, m in enumerate(made)),
                return_exceptions=True,
            )
        )

    results, sent = run(folio.url, body, batch_size=64)

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ILSConflict), results[1]
    assert [i["barcode"] for i in all_items(okapi)] == ["STAFF"]
    assert [h["instanceId"] for h in all_holdings(okapi)] == [owners[1]]
    # The share FOLIO refused as a whole, then each of its records alone.
    assert sent[CQL_HOLDINGS_DELETE] == 1 + 3
