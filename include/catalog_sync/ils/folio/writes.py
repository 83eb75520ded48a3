"""FOLIO creates, updates and reads in batches: what the adapter's Coalescers flush.

A batch of creates is one batch instance upsert, one retrieve of the stored instances (FOLIO
gives the HRID that SRS links to) and one SRS batch POST; a batch of updates is one upsert,
one SRS fetch and one SRS batch PUT; a batch of reads is one instance retrieve and one SRS
fetch. Each flush answers every record with its own result or its own exception:

- a 422 for one record (the batch endpoint is all or nothing, FolioClient splits it) is an
  ILSRejected with FOLIO's message for that record only; a 409 on `_version` an
  ILSVersionConflict for that record only;
- a batch unanswered (no answer, 5xx) is sent again: creates are first looked for by their
  stamps, so a create whose answer was lost is found rather than made twice (an unstamped one
  is never resent); an update resent after a lost answer that meets its own first write as a
  409 is no drift;
- a batch whose retries are used up fails every caller in it with ILSUnavailable, as a single
  record's did before: the task fails and Airflow's retry resumes after the acknowledged ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pymarc

from catalog_sync.changes.stamp import STAMP_SOURCE
from catalog_sync.ils.errors import (
    ILSAmbiguousCreate,
    ILSAuthError,
    ILSError,
    ILSRejected,
    ILSUnavailable,
    ILSVersionConflict,
)
from catalog_sync.ils.folio.batcher import Coalescer, Flush, In, Out
from catalog_sync.ils.folio.client import FolioClient, UpsertOutcome, UpsertStatus
from catalog_sync.ils.folio.records import srs_marcxml
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES

log = logging.getLogger(__name__)

STAMP_TYPE = "System control number"
BACKOFF = 0.2  # seconds before the first retry of a transient failure, doubled each time
# Records per coalesced batch. A batch of creates costs three requests however many records
# it carries, and the rate limit in front of FOLIO counts requests: at 64 (about 20 in practice)
# a 10 requests/s limit allowed ~45 creates/s (bench/results/2026-12-01-folio-pipeline).
# FOLIO's batch endpoints take hundreds (the emulator's 413 is above 1,000); 256 keeps an SRS
# batch body near 1 MB.
BATCH_RECORDS = 256
FLUSHES_IN_FLIGHT = 2  # while two batches wait for FOLIO or the gate, the next one fills
# A partial batch goes out after IDLE s with no record joining it, or MAX_WAIT s after its
# first. Records arrive in bursts (state-store group commits, lease grants) ms apart, so a
# 5 ms idle sent a small batch per burst; a longer wait costs latency, not throughput, with
# FOLIO_RECORDS_AT_ONCE in flight, and saves the requests the rate limit counts.
IDLE = 0.05
MAX_WAIT = 1.0
# Records a commit task holds under lease and works on at once: the batches in flight and one
# filling, so neither lease slots nor the pipeline's bound keeps a batch from filling.
FOLIO_RECORDS_AT_ONCE = BATCH_RECORDS * (FLUSHES_IN_FLIGHT + 1)
T = TypeVar("T")
Call = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


@dataclass
class NewInstance:
    """A create waiting for its batch: the instance to upsert (its id ours) and its MARC."""

    instance: dict[str, Any]
    record: pymarc.Record
    stamp: str | None
    cid: str


@dataclass
class ChangedInstance:
    """An update waiting for its batch: the whole instance with the `_version` last read."""

    instance: dict[str, Any]
    record: pymarc.Record
    cid: str


# A read's answer: the instance (None: no such instance) and its MARC as MARCXML (None: none).
Read = tuple[dict[str, Any] | None, bytes | None]


def transient(exc: BaseException) -> bool:
    """No answer, or a 5xx: the same request may be sent again."""
    if not isinstance(exc, ILSError):
        return isinstance(exc, httpx.TransportError)
    return isinstance(exc, ILSUnavailable) or (exc.status or 0) >= 500


class FolioWrites:
    """The batch procedures, and a Coalescer for each kind of call the adapter gathers."""

    def __init__(
        self,
        client: FolioClient,
        *,
        label: str,
        max_attempts: int,
        call: Call,
        gate: asyncio.Semaphore,
        batch_size: int = BATCH_RECORDS,
    ) -> None:
        self.client = client
        self.label = label
        self.max_attempts = max_attempts
        # The adapter's retrying call (concurrency bound, backoff on 5xx): for repeatable calls.
        self._call = call
        self._gate = gate
        self._snapshot: str | None = None
        self._snapshot_lock = asyncio.Lock()
        self.creates: Coalescer[NewInstance, str] = coalescer(self.create_many, batch_size)
        self.updates: Coalescer[ChangedInstance, None] = coalescer(self.update_many, batch_size)
        self.reads: Coalescer[tuple[str, str], Read] = coalescer(self.read_many, batch_size)

    # -- creates -----------------------------------------------------------------------------

    async def create_many(self, items: list[NewInstance]) -> list[str | BaseException]:
        cid = items[0].cid
        answers: list[str | BaseException | None] = [None] * len(items)
        await self._upsert_new(items, answers, cid)
        made = [n for n, a in enumerate(answers) if a is None]
        if made:
            ids = [str(items[n].instance["id"]) for n in made]
            try:
                stored = {
                    str(i["id"]): i
                    for i in await self._call(
                        "get created instances",
                        lambda: self.client.get_instances(ids, correlation_id=cid),
                    )
                }
            except ILSError as exc:
                for n in made:
                    answers[n] = exc
                return _done(answers)
            entries: list[tuple[int, dict[str, Any]]] = []
            for n in made:
                instance = stored.get(str(items[n].instance["id"]))
                if instance is None:
                    answers[n] = ILSUnavailable(
                        f"{self.label}: instance {items[n].instance['id']} vanished after saving"
                    )
                else:
                    entries.append((n, instance))
            errors = await self.save_marc(
                [(instance, items[n].record) for n, instance in entries], cid, new=True
            )
            for (n, instance), error in zip(entries, errors, strict=True):
                answers[n] = error if error is not None else str(instance["id"])
        return _done(answers)

    async def _upsert_new(
        self, items: list[NewInstance], answers: list[str | BaseException | None], cid: str
    ) -> None:
        """Upsert each new instance once; per-record refusals go into `answers`."""
        remaining = list(range(len(items)))
        delay = BACKOFF
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self._gate:
                    outcomes = await self.client.upsert_instances(
                        [items[n].instance for n in remaining], correlation_id=cid
                    )
            except ILSAuthError:
                raise
            except (ILSError, httpx.TransportError) as exc:
                if not transient(exc):
                    raise _refused(exc) from exc
                # A lost answer cannot be told from a lost request: only stamped creates,
                # which can be looked for, are ever sent again.
                for n in remaining:
                    if items[n].stamp is None or attempt == self.max_attempts:
                        answers[n] = ILSUnavailable(f"{self.label}: create instance: {exc}")
                remaining = [n for n in remaining if answers[n] is None]
                if not remaining:
                    return
                log.warning("%s: batch create failed (%s), looking for it", self.label, exc)
                await asyncio.sleep(delay)
                delay *= 2
                remaining = await self._found_by_stamp(items, remaining, answers, cid)
                if not remaining:
                    return
                continue
            for n, outcome in zip(remaining, outcomes, strict=True):
                answers[n] = self._refusal(outcome, "create instance")
            return

    async def _found_by_stamp(
        self,
        items: list[NewInstance],
        remaining: list[int],
        answers: list[str | BaseException | None],
        cid: str,
    ) -> list[int]:
        """Creates already in FOLIO take the id found; returns those still to send."""
        stamps = {str(items[n].stamp) for n in remaining}
        held: dict[str, list[str]] = {}
        type_id = IDENTIFIER_TYPES[STAMP_TYPE]
        for instance in await self.instances_by_stamps(stamps, cid):
            for entry in instance.get("identifiers", []):
                value = str(entry.get("value", "")).strip()
                if entry.get("identifierTypeId") == type_id and value.startswith(STAMP_SOURCE):
                    held.setdefault(value[len(STAMP_SOURCE) :].strip(), []).append(instance["id"])
        still: list[int] = []
        for n in remaining:
            found = held.get(str(items[n].stamp), [])
            if len(found) > 1:
                answers[n] = ILSAmbiguousCreate(
                    f"{self.label}: {len(found)} instances carry the stamp of one create"
                )
            elif found:
                items[n].instance["id"] = found[0]
            else:
                still.append(n)
        return still

    async def instances_by_stamps(self, stamps: Collection[str], cid: str) -> list[dict[str, Any]]:
        values = [STAMP_SOURCE + s for s in stamps]
        found: list[dict[str, Any]] = await self._call(
            "find instances by stamp",
            lambda: self.client.find_instances_by_identifier(
                STAMP_TYPE, values, correlation_id=cid
            ),
        )
        return found

    # -- updates -----------------------------------------------------------------------------

    async def update_many(self, items: list[ChangedInstance]) -> list[BaseException | None]:
        cid = items[0].cid
        answers: list[BaseException | None] = [None] * len(items)
        unanswered = False
        delay = BACKOFF
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self._gate:
                    outcomes = await self.client.upsert_instances(
                        [i.instance for i in items], correlation_id=cid
                    )
                break
            except ILSAuthError:
                raise
            except (ILSError, httpx.TransportError) as exc:
                if not transient(exc):
                    raise _refused(exc) from exc
                unanswered = True
                if attempt == self.max_attempts:
                    raise ILSUnavailable(f"{self.label}: update instances: {exc}") from exc
                log.warning("%s: batch update failed (%s), retrying", self.label, exc)
            await asyncio.sleep(delay)
            delay *= 2
        conflicts = [o.status is UpsertStatus.VERSION_CONFLICT for o in outcomes]
        held: set[str] = set()
        if unanswered and any(conflicts):
            # A resend after a lost answer meets its own first write as a 409: no drift when
            # FOLIO holds just what was sent, one version on.
            held = await self._holding([i for i, c in zip(items, conflicts, strict=True) if c], cid)
        for n, outcome in enumerate(outcomes):
            if outcome.record_id not in held:
                answers[n] = self._refusal(outcome, f"update instance {outcome.record_id}")
        applied = [n for n, a in enumerate(answers) if a is None]
        errors = await self.save_marc(
            [(items[n].instance, items[n].record) for n in applied], cid, new=False
        )
        for n, error in zip(applied, errors, strict=True):
            answers[n] = error
        return list(answers)

    async def _holding(self, sent: list[ChangedInstance], cid: str) -> set[str]:
        ids = [str(i.instance["id"]) for i in sent]
        stored = {
            str(i["id"]): i
            for i in await self._call(
                "get instances", lambda: self.client.get_instances(ids, correlation_id=cid)
            )
        }
        holding: set[str] = set()
        for item in sent:
            mine = item.instance
            copy = stored.get(str(mine["id"]))
            if copy is None or copy.get("_version") != mine["_version"] + 1:
                continue
            if all(copy.get(k) == v for k, v in mine.items() if k not in ("_version", "metadata")):
                holding.add(str(mine["id"]))
        return holding

    # -- reads -------------------------------------------------------------------------------

    async def read_many(self, wanted: list[tuple[str, str]]) -> list[Read | BaseException]:
        """Each instance with its MARC: one retrieve and one SRS fetch for the batch."""
        cid = wanted[0][1]
        ids = list(dict.fromkeys(i for i, _ in wanted))
        instances = {
            str(i["id"]): i
            for i in await self._call(
                "get instances", lambda: self.client.get_instances(ids, correlation_id=cid)
            )
        }
        present = [i for i in ids if i in instances]
        sources: dict[str, dict[str, Any]] = {}
        if present:
            sources = await self._call(
                "fetch source records",
                lambda: self.client.fetch_source_records(present, correlation_id=cid),
            )
        answers: list[Read | BaseException] = []
        for instance_id, _ in wanted:
            source = sources.get(instance_id)
            try:
                marc = srs_marcxml(source) if source is not None else None
            except ILSError as exc:  # that record's MARC is unreadable: its problem alone
                answers.append(exc)
                continue
            answers.append((instances.get(instance_id), marc))
        return answers

    # -- SRS ---------------------------------------------------------------------------------

    async def snapshot_id(self, cid: str) -> str:
        """One SRS snapshot (FOLIO's job execution) for everything this client saves."""
        async with self._snapshot_lock:
            if self._snapshot is None:
                self._snapshot = await self._call(
                    "create snapshot", lambda: self.client.create_snapshot(correlation_id=cid)
                )
            return self._snapshot

    async def save_marc(
        self, entries: list[tuple[dict[str, Any], pymarc.Record]], cid: str, *, new: bool
    ) -> list[ILSRejected | None]:
        """MARC for each saved instance; per record None or why SRS refused it.

        New instances have no SRS record, so the first try of a create batch skips the fetch
        for existing ones; a resend (its first answer may be lost) looks first, so the MARC is
        updated rather than saved twice.
        """
        if not entries:
            return []
        snapshot = await self.snapshot_id(cid)
        first = new

        async def send() -> list[Any]:
            nonlocal first
            if first:
                first = False
                return await self.client.create_source_records(
                    entries, snapshot, correlation_id=cid
                )
            return await self.client.save_source_records(entries, snapshot, correlation_id=cid)

        outcomes = await self._call("save source records", send)
        return [
            None
            if o.error is None
            else ILSRejected(
                f"{self.label}: SRS refused the MARC of instance {o.instance_id}: {o.error}",
                reason="folio_invalid",
            )
            for o in outcomes
        ]

    def _refusal(self, outcome: UpsertOutcome, what: str) -> BaseException | None:
        if outcome.status is UpsertStatus.VERSION_CONFLICT:
            return ILSVersionConflict(f"{self.label}: {what}: {outcome.message}", status=409)
        if outcome.status is UpsertStatus.REJECTED:
            # FOLIO's 422 validation message goes to the report as the failure's reason.
            return ILSRejected(
                f"{self.label}: {what}: {outcome.message}", status=422, reason="folio_invalid"
            )
        return None


def _refused(exc: ILSError | httpx.TransportError) -> BaseException:
    """A 4xx FOLIO gave the whole batch (not one FolioClient splits): refused as sent."""
    if type(exc) is ILSError and exc.status is not None:
        return ILSRejected(str(exc), status=exc.status)
    return exc


def coalescer(flush: Flush[In, Out], size: int) -> Coalescer[In, Out]:
    """A Coalescer timed for FOLIO behind a rate limit (IDLE, MAX_WAIT, FLUSHES_IN_FLIGHT)."""
    return Coalescer(flush, size=size, idle=IDLE, max_wait=MAX_WAIT, concurrency=FLUSHES_IN_FLIGHT)


def _done(answers: list[str | BaseException | None]) -> list[str | BaseException]:
    return [a if a is not None else AssertionError("a create left unanswered") for a in answers]


__all__ = [
    "BATCH_RECORDS",
    "FOLIO_RECORDS_AT_ONCE",
    "ChangedInstance",
    "FolioWrites",
    "NewInstance",
    "coalescer",
]
