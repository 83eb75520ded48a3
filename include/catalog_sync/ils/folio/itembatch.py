"""FOLIO holdings and items in batches: what FolioItems' Coalescers flush (issue 18).

FolioItems answers the pipeline item by item (ItemsClient); the calls many records make at
once go out together, as instance writes do (ils.folio.writes):

- a look-up is one CQL retrieve for the batch (`barcode=="a" or barcode=="b" ...`): items by
  barcode, id or holdings record, holdings by instance or id, instances by id;
- new holdings and new items are one batch synchronous POST each, with upsert=false so an id
  FOLIO holds already is refused, never overwritten; changed items one POST with upsert=true,
  each echoing the `_version` it was read with, so a 409 is drift for that item alone;
- FOLIO rejects a batch as a whole on any error (*-sync.raml); FolioClient.save_batch splits a
  refused batch in halves until the bad record stands alone, so one item blocks no other;
- a batch left unanswered (no answer, 5xx) is looked for before anything is sent again (items
  by barcode, holdings by the id we derive from instance and location): what FOLIO holds with
  the id we gave it was written, and only the rest is resent;
- items to delete, and holdings of ours left empty, go in one CQL delete per URL-sized
  share, each selected by id and the `_version` read (ils.folio.cqldelete);
- each record's lease is checked in Redis just before the request that carries it (FOLIO has
  no fencing header); a record whose lease is gone is not sent and its caller gets LeaseLost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from catalog_sync.ils.errors import (
    ILSAuthError,
    ILSConflict,
    ILSError,
    ILSRejected,
    ILSUnavailable,
    ILSVersionConflict,
)
from catalog_sync.ils.folio.batcher import Coalescer
from catalog_sync.ils.folio.client import HOLDINGS_BATCH, ITEM_BATCH, FolioClient, UpsertStatus
from catalog_sync.ils.folio.cqldelete import delete_holdings, delete_items
from catalog_sync.ils.folio.records import cql_escape
from catalog_sync.ils.folio.writes import BACKOFF, coalescer, transient
from catalog_sync.ils.koha_items import DUPLICATE_BARCODE
from catalog_sync.leases import Lease

log = logging.getLogger(__name__)

HOLDINGS = "/holdings-storage/holdings"
ITEMS = "/item-storage/items"
INSTANCES = "/instance-storage/instances"
Call = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
Records = list[dict[str, Any]]
# A look-up: (value, correlation id) -> the records whose indexed property holds the value.
Lookup = Coalescer[tuple[str, str], Records]


@dataclass
class Pending:
    """A holdings record or item to write: its body (id ours), its caller's lease and cid."""

    body: dict[str, Any]
    lease: Lease | None
    cid: str

    @property
    def id(self) -> str:
        return str(self.body["id"])


def duplicate_barcode() -> ILSConflict:
    # The barcode stays out of the message: it may be masked as PII outside the ILS payload.
    return ILSConflict("FOLIO: the item's barcode is taken", status=422, reason=DUPLICATE_BARCODE)


class ItemBatches:
    """A Coalescer per kind of holdings/item call, and the batch procedures they flush."""

    def __init__(
        self,
        client: FolioClient,
        *,
        call: Call,
        gate: asyncio.Semaphore,
        label: str,
        max_attempts: int,
        batch_size: int,
    ) -> None:
        self.client = client
        self._call = call  # the adapter's: concurrency bound, transient failures retried
        self.gate = gate
        self.label = label
        self.max_attempts = max_attempts
        self._size = batch_size
        # FOLIO's barcode index is case-insensitive (schema.json), so its look-up is too.
        self.items_by_barcode = self._lookup(ITEMS, "items", "barcode", fold=True)
        self.items_by_id = self._lookup(ITEMS, "items", "id")
        self.items_of_holdings = self._lookup(ITEMS, "items", "holdingsRecordId")
        self.holdings_of_instance = self._lookup(HOLDINGS, "holdingsRecords", "instanceId")
        self.holdings_by_id = self._lookup(HOLDINGS, "holdingsRecords", "id")
        self.instances_by_id = self._lookup(INSTANCES, "instances", "id")
        self.new_holdings: Coalescer[Pending, dict[str, Any]] = coalescer(
            self._create_holdings, batch_size
        )
        self.new_items: Coalescer[Pending, dict[str, Any]] = coalescer(
            self._create_items, batch_size
        )
        self.changed_items: Coalescer[Pending, None] = coalescer(self._update_items, batch_size)
        # Items to delete, as read (id, `_version`): a CQL delete per URL-sized share.
        self.gone_items: Coalescer[Pending, None] = coalescer(self._delete_items, batch_size)
        # Holdings of ours found empty, as read: likewise.
        self.gone_holdings: Coalescer[Pending, None] = coalescer(self._delete_holdings, batch_size)

    # -- look-ups ----------------------------------------------------------------------------

    def _lookup(self, path: str, key: str, index: str, *, fold: bool = False) -> Lookup:
        def norm(value: object) -> str:
            return str(value).lower() if fold else str(value)

        async def flush(wanted: list[tuple[str, str]]) -> list[Records | BaseException]:
            found = await self.retrieve(path, key, index, [v for v, _ in wanted], wanted[0][1])
            by: dict[str, Records] = {}
            for record in found:
                by.setdefault(norm(record.get(index, "")), []).append(record)
            return [list(by.get(norm(value), [])) for value, _ in wanted]

        return coalescer(flush, self._size)

    async def retrieve(
        self, path: str, key: str, index: str, values: Sequence[str], cid: str
    ) -> Records:
        """Records whose `index` equals any of `values`: one request per 500 values."""
        clauses = [f'{index}=="{cql_escape(v)}"' for v in dict.fromkeys(values)]
        found: Records = await self._call(
            f"retrieve {key}",
            lambda: self.client.retrieve_where(path, key, clauses, correlation_id=cid),
        )
        return found

    # -- writes ------------------------------------------------------------------------------

    async def _create_holdings(self, wanted: list[Pending]) -> list[dict[str, Any] | BaseException]:
        async def held(pending: list[Pending]) -> dict[str, dict[str, Any]]:
            ids = [p.id for p in pending]
            found = await self.retrieve(HOLDINGS, "holdingsRecords", "id", ids, pending[0].cid)
            return {str(h["id"]): h for h in found}

        async def refused(pending: list[Pending], why: list[str]) -> list[Any]:
            # Our id taken already: a resend whose first try was saved (the id is derived
            # from instance and location, so it is the same holdings); else FOLIO's refusal.
            found = await held(pending)
            return [
                found.get(p.id)
                or ILSRejected(f"FOLIO: create holdings: {w}", status=422, reason="folio_invalid")
                for p, w in zip(pending, why, strict=True)
            ]

        return await self._create("holdings", HOLDINGS_BATCH, "holdingsRecords", wanted, held,
                                  refused)  # fmt: skip

    async def _create_items(self, wanted: list[Pending]) -> list[dict[str, Any] | BaseException]:
        async def held(pending: list[Pending]) -> dict[str, dict[str, Any]]:
            # Keyed by barcode, as FOLIO's unique index keys items: ours if it has our id.
            barcodes = [str(p.body["barcode"]) for p in pending]
            found = await self.retrieve(ITEMS, "items", "barcode", barcodes, pending[0].cid)
            ours = {p.id for p in pending}
            return {str(i["id"]): i for i in found if str(i["id"]) in ours}

        async def refused(pending: list[Pending], why: list[str]) -> list[Any]:
            barcodes = [str(p.body["barcode"]) for p in pending]
            found = await self.retrieve(ITEMS, "items", "barcode", barcodes, pending[0].cid)
            holders = {str(i.get("barcode", "")).lower(): i for i in found}
            answers: list[Any] = []
            for p, w in zip(pending, why, strict=True):
                holder = holders.get(str(p.body["barcode"]).lower())
                if holder is not None and str(holder["id"]) == p.id:
                    answers.append(holder)  # saved by an earlier try of this very batch
                elif holder is not None:
                    answers.append(duplicate_barcode())
                else:
                    answers.append(
                        ILSRejected(f"FOLIO: create item: {w}", status=422, reason="folio_invalid")
                    )
            return answers

        return await self._create("items", ITEM_BATCH, "items", wanted, held, refused)

    async def _create(
        self,
        what: str,
        path: str,
        key: str,
        wanted: list[Pending],
        held: Callable[[list[Pending]], Awaitable[dict[str, dict[str, Any]]]],
        refused: Callable[[list[Pending], list[str]], Awaitable[list[Any]]],
    ) -> list[dict[str, Any] | BaseException]:
        """Create each record once (upsert=false); every caller answered with the stored
        record or why not."""
        answers: list[dict[str, Any] | BaseException | None] = [None] * len(wanted)
        remaining = list(range(len(wanted)))
        delay = BACKOFF
        for attempt in range(1, self.max_attempts + 1):
            remaining = await self.leased(wanted, remaining, answers)
            if not remaining:
                break
            # One body per id: two items of a record at one new location share one holdings.
            bodies = list({wanted[n].id: wanted[n].body for n in remaining}.values())
            try:
                outcomes = await self._save(path, key, bodies, wanted[remaining[0]].cid, False)
            except ILSAuthError:
                raise
            except (ILSError, httpx.TransportError) as exc:
                if not transient(exc) or attempt == self.max_attempts:
                    for n in remaining:
                        answers[n] = _unsent(exc, f"{self.label}: create {what}")
                    break
                log.warning("%s: batch create of %s failed (%s), looking for it", self.label,
                            what, exc)  # fmt: skip
                await asyncio.sleep(delay)
                delay *= 2
                found = await held([wanted[n] for n in remaining])
                for n in remaining:
                    answers[n] = found.get(wanted[n].id)
                remaining = [n for n in remaining if answers[n] is None]
                if not remaining:
                    break
                continue
            by_id = {o.record_id: o for o in outcomes}
            no = [n for n in remaining if by_id[wanted[n].id].status is not UpsertStatus.APPLIED]
            for n in remaining:
                if n not in no:
                    answers[n] = wanted[n].body
            if no:
                why = [str(by_id[wanted[n].id].message) for n in no]
                for n, answer in zip(no, await refused([wanted[n] for n in no], why), strict=True):
                    answers[n] = answer
            break
        return [
            a if a is not None else AssertionError(f"a {what} create left unanswered")
            for a in answers
        ]

    async def _update_items(self, wanted: list[Pending]) -> list[BaseException | None]:
        """Each changed item with the `_version` it was read with (upsert=true): a 409 is that
        item's (its caller reads it again); a resend after a lost answer meets its own first
        write as a 409 too, and the caller's re-read then finds it already so."""
        answers: list[BaseException | None] = [None] * len(wanted)
        remaining = await self.leased(wanted, list(range(len(wanted))), answers)
        delay = BACKOFF
        for attempt in range(1, self.max_attempts + 1):
            if not remaining:
                break
            bodies = [wanted[n].body for n in remaining]
            try:
                outcomes = await self._save(ITEM_BATCH, "items", bodies, wanted[0].cid, True)
            except ILSAuthError:
                raise
            except (ILSError, httpx.TransportError) as exc:
                if not transient(exc) or attempt == self.max_attempts:
                    for n in remaining:
                        answers[n] = _unsent(exc, f"{self.label}: update items")
                    break
                log.warning("%s: batch item update failed (%s), retrying", self.label, exc)
                await asyncio.sleep(delay)
                delay *= 2
                continue
            for n, outcome in zip(remaining, outcomes, strict=True):
                message = f"{self.label}: update item {outcome.record_id}: {outcome.message}"
                if outcome.status is UpsertStatus.VERSION_CONFLICT:
                    answers[n] = ILSVersionConflict(message, status=409)
                elif outcome.status is UpsertStatus.REJECTED:
                    answers[n] = ILSRejected(message, status=422, reason="folio_invalid")
            break
        return answers

    async def _delete_items(self, wanted: list[Pending]) -> list[BaseException | None]:
        return await delete_items(self, wanted)

    async def _delete_holdings(self, wanted: list[Pending]) -> list[BaseException | None]:
        return await delete_holdings(self, wanted)

    async def _save(
        self, path: str, key: str, bodies: Records, cid: str, upsert: bool
    ) -> list[Any]:
        """One batch (split by FolioClient when refused); any other 4xx refuses it as sent."""
        try:
            async with self.gate:
                return await self.client.save_batch(
                    path, key, bodies, upsert=upsert, correlation_id=cid
                )
        except ILSError as exc:
            if transient(exc) or isinstance(exc, ILSAuthError) or type(exc) is not ILSError:
                raise
            raise ILSRejected(str(exc), status=exc.status) from exc

    async def leased(
        self, wanted: list[Pending], remaining: list[int], answers: list[Any]
    ) -> list[int]:
        """The records whose lease (if any) Redis still confirms; the others get why not."""
        checks = await asyncio.gather(
            *(_check(wanted[n].lease) for n in remaining), return_exceptions=True
        )
        kept = []
        for n, check in zip(remaining, checks, strict=True):
            if isinstance(check, BaseException):
                answers[n] = check
            else:
                kept.append(n)
        return kept


def _unsent(exc: BaseException, what: str) -> BaseException:
    """Why a batch went unwritten: FOLIO's refusal as it was, or no answer after the retries."""
    if transient(exc):
        return ILSUnavailable(f"{what}: {exc}")
    return exc


async def _check(lease: Lease | None) -> None:
    if lease is not None:
        await lease.before_write()
