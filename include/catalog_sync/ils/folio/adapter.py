"""ILSClient for FOLIO: an inventory instance plus its MARC source record in SRS, per biblio.

The ILS id of a record is its instance id (a UUID). A create upserts the instance (batch
synchronous endpoint) and then saves the MARC in SRS linked to it by `externalIdsHolder`; reads
give that MARC back as MARCXML; an update echoes the `_version` its read saw, so a change made
in FOLIO between our read and our write is a 409 (ILSVersionConflict), drift as on Koha.

The pipeline calls create_biblio / update_biblio / get_biblio once per record, many records at
once; the adapter gathers those concurrent calls into batch requests (ils.folio.writes), each
caller still answered for its own record, so the pipeline stays ILS-agnostic.

The create stamp (catalog_sync.changes.stamp, a 035) becomes a "System control number" identifier of
the instance under FOLIO's own MARC mapping, so a lost create is found again through the
`identifiers` CQL index and confirmed in its SRS record: nothing FOLIO lacks is relied on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from catalog_sync.changes.stamp import STAMP_SOURCE, marcxml_control, marcxml_stamp, record_stamp
from catalog_sync.ils.client import Candidate
from catalog_sync.ils.errors import (
    ILSAuthError,
    ILSConflict,
    ILSError,
    ILSNotFound,
    ILSRejected,
    ILSUnavailable,
)
from catalog_sync.ils.folio.client import FolioClient
from catalog_sync.ils.folio.itembatch import ItemBatches
from catalog_sync.ils.folio.items import FolioItems
from catalog_sync.ils.folio.records import (
    MATCH_INDEXES,
    check_id,
    instance_of,
    match_clauses,
    parse_marcxml,
    verified_candidates,
)
from catalog_sync.ils.folio.session import FolioSettings, OkapiSession, folio_message
from catalog_sync.ils.folio.writes import (
    BACKOFF,
    BATCH_RECORDS,
    FOLIO_RECORDS_AT_ONCE,
    ChangedInstance,
    FolioWrites,
    NewInstance,
)
from catalog_sync.ils.ratelimit import rate_gate
from catalog_sync.ils.settings import ILSSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class FolioAdapter(FolioItems):
    """FOLIO inventory + SRS through a FolioClient; see ILSClient for the contract (and
    ItemsClient, for holdings and items: catalog_sync.ils.folio.items)."""

    flavour = "folio"
    match_indexes = MATCH_INDEXES  # catalog_sync.changes.matching: what find_by_numbers searches
    # Records a commit task should hold under lease and work on at once: the batches in flight
    # and one filling (the defaults, 16 leases and 64 records in flight, would cap every batch
    # far below BATCH_RECORDS).
    records_at_once = FOLIO_RECORDS_AT_ONCE
    # Records one match search carries (changes.matching; Koha's 40 is a URL bound). FOLIO's
    # POST .../retrieve has its CQL in the body, and FolioClient still cuts a query at
    # batch_size (500) OR-ed clauses, the size its reads already send: 200 records with the
    # demo's ISBN/ISSN/LCCN points (~2.5 clauses each on BooksAll) are one request, not five.
    records_per_search = 200

    def __init__(
        self,
        settings: ILSSettings,
        redis_url: str | None = None,
        *,
        batch_size: int = BATCH_RECORDS,
    ) -> None:
        if not settings.tenant:
            raise ILSError(f"{settings.label}: a FOLIO Connection needs the `tenant` extra")
        if not settings.username or settings.password is None:
            raise ILSError(f"{settings.label}: a FOLIO Connection needs a login and password")
        self.settings = settings
        # The Koha transport's token bucket: with a Redis URL, every task on every worker that
        # talks to this FOLIO books its requests in one shared bucket (a 429 is still honoured).
        self.session = OkapiSession(
            FolioSettings(
                url=settings.base_url,
                tenant=settings.tenant,
                username=settings.username,
                password=settings.password,
                timeout=settings.timeout,
            ),
            gate=rate_gate(
                settings.rate_limit, settings.burst, redis_url, settings.base_url, self.label
            ),
        )
        self.client = FolioClient(self.session)
        self._gate = asyncio.Semaphore(settings.max_concurrency)
        self.writes = FolioWrites(
            self.client,
            label=self.label,
            max_attempts=settings.max_attempts,
            call=self._call,
            gate=self._gate,
            batch_size=batch_size,
        )
        # Holdings and items: the same batching, for the records' item fields.
        self.item_batches = ItemBatches(
            self.client,
            call=self._call,
            gate=self._gate,
            label=self.label,
            max_attempts=settings.max_attempts,
            batch_size=batch_size,
        )
        # Instances as last read (with their `_version`): the next update echoes that version.
        self._read: dict[str, dict[str, Any]] = {}
        # Stamp -> instance an earlier try created but never gave its MARC (seen by find_created):
        # the create of that stamp finishes it instead of making a second instance.
        self._unfinished: dict[str, str] = {}

    @property
    def label(self) -> str:
        return f"{self.settings.label} (tenant {self.settings.tenant!r})"

    async def _call(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        """`send` under the concurrency bound; transient failures (no answer, 5xx) retried
        with backoff. Only for calls that are safe to repeat; auth failures never are."""
        delay = BACKOFF
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                async with self._gate:
                    return await send()
            except ILSAuthError:
                raise
            except httpx.TransportError as exc:  # the session's login/refresh, unanswered
                if attempt == self.settings.max_attempts:
                    raise ILSUnavailable(f"{self.label}: {what}: {exc!r}") from exc
            except ILSError as exc:
                transient = isinstance(exc, ILSUnavailable) or (exc.status or 0) >= 500
                if not transient and type(exc) is ILSError and exc.status is not None:
                    # Any other 4xx: FOLIO refused this request as sent (its words kept).
                    raise ILSRejected(str(exc), status=exc.status) from exc
                if not transient:
                    raise
                if attempt == self.settings.max_attempts:
                    raise ILSUnavailable(f"{self.label}: {what}: {exc}") from exc
                log.warning("%s: %s failed (%s), retrying", self.label, what, exc.status)
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- ILSClient -------------------------------------------------------------------------

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        record = parse_marcxml(marcxml)
        stamp = record_stamp(record)  # as marcxml_stamp reads it, without parsing it again
        unfinished = self._unfinished.pop(stamp, None) if stamp else None
        if unfinished is not None:
            # Made from this very payload (the stamp is the create's key), so only its MARC
            # is missing: saved now, and the instance is created once.
            made = await self._instance(unfinished, correlation_id)
            if made is not None:
                [refused] = await self.writes.save_marc([(made, record)], correlation_id, new=False)
                if refused is not None:
                    raise refused
                return str(made["id"])
        instance = instance_of(record, None)
        create = NewInstance(instance, record, stamp, correlation_id)
        return await self.writes.creates.submit(create)

    async def update_biblio(self, biblio_id: str, marcxml: bytes, *, correlation_id: str) -> None:
        check_id(biblio_id)
        record = parse_marcxml(marcxml)
        stored = self._read.pop(biblio_id, None) or await self._instance(biblio_id, correlation_id)
        if stored is None:
            raise ILSNotFound(f"{self.label}: no instance {biblio_id}")
        # FOLIO's PUT replaces the whole record: fields staff set in FOLIO (suppression,
        # statistical codes ...) are kept, the MARC-derived ones replaced, `_version` echoed.
        mapped = instance_of(record, biblio_id)
        instance = {**stored, **mapped, "hrid": stored["hrid"], "_version": stored["_version"]}
        instance.pop("metadata", None)
        await self.writes.updates.submit(ChangedInstance(instance, record, correlation_id))

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        check_id(biblio_id)
        instance, marc = await self.writes.reads.submit((biblio_id, correlation_id))
        if instance is None or marc is None:
            # No instance, or one without MARC (FOLIO-source, a create cut short): no copy.
            return None
        self._read[biblio_id] = instance
        return marc

    async def get_biblios(
        self, biblio_ids: Collection[str], *, correlation_id: str
    ) -> dict[str, bytes]:
        # The Coalescer's own batch read, called with the whole group: one instance retrieve
        # and one SRS fetch, each copy read exactly as get_biblio reads it.
        ids = sorted(set(biblio_ids))
        for biblio_id in ids:
            check_id(biblio_id)
        if not ids:
            return {}
        answers = await self.writes.read_many([(i, correlation_id) for i in ids])
        copies: dict[str, bytes] = {}
        for biblio_id, answer in zip(ids, answers, strict=True):
            # No instance, no MARC, or MARC that does not read: left out, so get_biblio reads
            # it alone and says which (ILSClient.get_biblios).
            if isinstance(answer, BaseException) or answer[0] is None or answer[1] is None:
                continue
            self._read[biblio_id] = answer[0]
            copies[biblio_id] = answer[1]
        return copies

    async def delete_biblio(self, biblio_id: str, *, correlation_id: str) -> None:
        check_id(biblio_id)
        source = await self._call(
            f"get source record of {biblio_id}",
            lambda: self.client.get_source_record(biblio_id, correlation_id=correlation_id),
        )
        await self._delete(f"/instance-storage/instances/{biblio_id}", correlation_id)
        if source is not None:
            # SRS keeps the record with state DELETED, as FOLIO's own delete does.
            with contextlib.suppress(ILSNotFound):
                await self._delete(f"/source-storage/records/{source['id']}", correlation_id)
        self._read.pop(biblio_id, None)

    async def _delete(self, path: str, cid: str) -> None:
        async def send() -> None:
            response = await self.session.request("DELETE", path, correlation_id=cid)
            if response.status_code == 204:
                return
            message = f"{self.label}: DELETE {path}: {folio_message(response)}"
            if response.status_code == 404:
                raise ILSNotFound(message, status=404)
            if response.status_code == 400 and "still referenced" in response.text:
                # Holdings hang off the instance: FOLIO refuses, as Koha does with items.
                raise ILSConflict(message, status=400)
            if response.status_code < 500:
                raise ILSRejected(message, status=response.status_code)
            raise ILSError(message, status=response.status_code)

        await self._call(f"DELETE {path}", send)

    async def find_by_numbers(
        self, numbers: Mapping[str, Sequence[str]], *, correlation_id: str
    ) -> list[Candidate]:
        # Every index's values in one CQL query (match_clauses), FOLIO's values verified.
        clauses = match_clauses(numbers)
        if not clauses:
            return []
        found = await self._call(
            "find instances by numbers",
            lambda: self.client.find_instances_where(clauses, correlation_id=correlation_id),
        )
        return verified_candidates(found, numbers)

    async def find_created(
        self,
        stamps: Collection[str],
        *,
        title: str | None,
        source: str | None,
        since: datetime,
        correlation_id: str,
    ) -> dict[str, str]:
        # The stamp decides (its key is unique to one create); title and since narrow Koha's
        # search only because Koha cannot search 035. FOLIO can, through `identifiers`.
        del title, since
        wanted = set(stamps)
        found: dict[str, str] = {}
        for instance in await self.writes.instances_by_stamps(wanted, correlation_id):
            instance_id = str(instance["id"])
            copy = await self.get_biblio(instance_id, correlation_id=correlation_id)
            if copy is None:
                # Our instance whose MARC never reached SRS (the worker died in between). A
                # look-up writes nothing: it is reported as found (a revert deletes it), and
                # a create of its stamp finishes it instead of making a second instance.
                for made_by in sorted(_stamps_of(instance) & wanted):
                    self._unfinished[made_by] = instance_id
                    found[instance_id] = made_by
                continue
            stamp = marcxml_stamp(copy)
            if stamp in wanted and marcxml_control(copy, "003") == source:
                found[instance_id] = str(stamp)
        return found

    async def check_access(self, *, correlation_id: str) -> str:
        async def send() -> str:
            response = await self.session.request(
                "GET",
                "/instance-storage/instances",
                correlation_id=correlation_id,
                params={"limit": "0", "query": "cql.allRecords=1"},
            )
            if response.status_code != 200:
                raise ILSError(
                    f"{self.label}: GET /instance-storage/instances: {folio_message(response)}",
                    status=response.status_code,
                )
            return str(response.json().get("totalRecords", "?"))

        total = await self._call("check access", send)
        return f"{self.label}: FOLIO inventory storage answered; {total} instances"

    async def aclose(self) -> None:
        await self.session.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- helpers ---------------------------------------------------------------------------

    async def _instance(self, instance_id: str, cid: str) -> dict[str, Any] | None:
        found = await self._call(
            f"get instance {instance_id}",
            lambda: self.client.get_instances([instance_id], correlation_id=cid),
        )
        return found[0] if found else None


def _stamps_of(instance: dict[str, Any]) -> set[str]:
    """The create stamps an instance carries as identifiers (mapped from our 035)."""
    values = (str(i.get("value", "")) for i in instance.get("identifiers", []))
    return {v[len(STAMP_SOURCE) :].strip() for v in values if v.startswith(STAMP_SOURCE)}


__all__ = ["FolioAdapter"]
