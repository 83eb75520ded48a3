"""ILSClient for FOLIO: an inventory instance plus its MARC source record in SRS, per biblio.

The ILS id of a record is its instance id (a UUID). A create upserts the instance (batch
synchronous endpoint) and then saves the MARC in SRS linked to it by `externalIdsHolder`; reads
give that MARC back as MARCXML; an update echoes the `_version` its read saw, so a change made
in FOLIO between our read and our write is a 409 (ILSVersionConflict), drift as on Koha.

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
import pymarc

from catalog_sync.changes.stamp import STAMP_SOURCE, marcxml_control, marcxml_stamp
from catalog_sync.ils.client import Candidate
from catalog_sync.ils.errors import (
    ILSAmbiguousCreate,
    ILSAuthError,
    ILSConflict,
    ILSError,
    ILSNotFound,
    ILSRejected,
    ILSUnavailable,
    ILSVersionConflict,
)
from catalog_sync.ils.folio.client import FolioClient, UpsertStatus
from catalog_sync.ils.folio.items import FolioItems
from catalog_sync.ils.folio.reads import read_biblios
from catalog_sync.ils.folio.records import (
    MATCH_INDEXES,
    check_id,
    instance_of,
    match_clauses,
    parse_marcxml,
    srs_marcxml,
    verified_candidates,
)
from catalog_sync.ils.folio.session import FolioSettings, OkapiSession, folio_message
from catalog_sync.ils.settings import ILSSettings

log = logging.getLogger(__name__)

_STAMP_TYPE = "System control number"
_BACKOFF = 0.2  # seconds before the first retry of a transient failure, doubled each time
T = TypeVar("T")


class FolioAdapter(FolioItems):
    """FOLIO inventory + SRS through a FolioClient; see ILSClient for the contract (and
    ItemsClient, for holdings and items: catalog_sync.ils.folio.items)."""

    flavour = "folio"
    match_indexes = MATCH_INDEXES  # catalog_sync.changes.matching: what find_by_numbers searches

    def __init__(self, settings: ILSSettings, redis_url: str | None = None) -> None:
        if not settings.tenant:
            raise ILSError(f"{settings.label}: a FOLIO Connection needs the `tenant` extra")
        if not settings.username or settings.password is None:
            raise ILSError(f"{settings.label}: a FOLIO Connection needs a login and password")
        self.settings = settings
        # Shared rate limiting through Redis is the Koha transport's; FOLIO answers 429 with
        # Retry-After, which the session honours (redis_url is accepted for the same factory).
        del redis_url
        self.session = OkapiSession(
            FolioSettings(
                url=settings.base_url,
                tenant=settings.tenant,
                username=settings.username,
                password=settings.password,
                timeout=settings.timeout,
            )
        )
        self.client = FolioClient(self.session)
        self._gate = asyncio.Semaphore(settings.max_concurrency)
        self._snapshot: str | None = None
        self._snapshot_lock = asyncio.Lock()
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
        delay = _BACKOFF
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

    async def _snapshot_id(self, cid: str) -> str:
        """One SRS snapshot (FOLIO's job execution) for everything this client saves."""
        async with self._snapshot_lock:
            if self._snapshot is None:
                self._snapshot = await self._call(
                    "create snapshot", lambda: self.client.create_snapshot(correlation_id=cid)
                )
            return self._snapshot

    # -- ILSClient -------------------------------------------------------------------------

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        record = parse_marcxml(marcxml)
        stamp = marcxml_stamp(marcxml)
        unfinished = self._unfinished.pop(stamp, None) if stamp else None
        if unfinished is not None:
            # Made from this very payload (the stamp is the create's key), so only its MARC
            # is missing: saved now, and the instance is created once.
            made = await self._instance(unfinished, correlation_id)
            if made is not None:
                await self._save_marc(made, record, correlation_id)
                return str(made["id"])
        instance = instance_of(record, None)
        await self._create_instance(instance, stamp, correlation_id)
        stored = await self._instance(instance["id"], correlation_id)
        if stored is None:
            raise ILSUnavailable(f"{self.label}: instance {instance['id']} vanished after saving")
        await self._save_marc(stored, record, correlation_id)
        return str(stored["id"])

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
        await self._upsert(instance, correlation_id, what=f"update instance {biblio_id}")
        await self._save_marc(instance, record, correlation_id)

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        check_id(biblio_id)
        instance = await self._instance(biblio_id, correlation_id)
        if instance is None:
            return None
        source = await self._call(
            f"get source record of {biblio_id}",
            lambda: self.client.get_source_record(biblio_id, correlation_id=correlation_id),
        )
        if source is None:
            # An instance without MARC (FOLIO-source, or a create cut short): nothing to diff.
            return None
        self._read[biblio_id] = instance
        return srs_marcxml(source)

    async def get_biblios(
        self, biblio_ids: Collection[str], *, correlation_id: str
    ) -> dict[str, bytes]:
        copies, read = await read_biblios(self.client, self._call, biblio_ids, correlation_id)
        self._read.update(read)
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
        for instance in await self._instances_by_stamps(wanted, correlation_id):
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

    async def _create_instance(self, instance: dict[str, Any], stamp: str | None, cid: str) -> None:
        """Upsert a new instance once. A transient failure may come after FOLIO saved it: a
        stamped create is then looked for by its stamp and resent (same id) only if absent;
        an unstamped one is never resent, as a lost answer cannot be told from a lost request."""
        delay = _BACKOFF
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                async with self._gate:
                    await self._upsert_once(instance, cid, what="create instance")
                return
            except ILSAuthError:
                raise
            except (ILSError, httpx.TransportError) as exc:
                transient = not isinstance(exc, ILSError) or (
                    isinstance(exc, ILSUnavailable) or (exc.status or 0) >= 500
                )
                if not transient:
                    raise
                if stamp is None or attempt == self.settings.max_attempts:
                    raise ILSUnavailable(f"{self.label}: create instance: {exc}") from exc
                log.warning("%s: create instance failed (%s), looking for it", self.label, exc)
            await asyncio.sleep(delay)
            delay *= 2
            found = await self._instances_by_stamps([stamp], cid)
            if len(found) > 1:
                raise ILSAmbiguousCreate(
                    f"{self.label}: {len(found)} instances carry the stamp of one create"
                )
            if found:
                instance["id"] = found[0]["id"]
                return

    async def _upsert(self, instance: dict[str, Any], cid: str, *, what: str) -> None:
        """An update, resent while unanswered. A resend after a lost answer meets its own
        first write as a 409: no drift when FOLIO holds just what was sent, one version on."""
        unanswered = False

        async def send() -> None:
            nonlocal unanswered
            try:
                await self._upsert_once(instance, cid, what=what)
            except ILSVersionConflict:
                if unanswered and await self._holds(instance, cid):
                    return
                raise
            except (ILSError, httpx.TransportError) as exc:
                status = exc.status if isinstance(exc, ILSError) else None
                unanswered = unanswered or not isinstance(exc, ILSError) or (status or 0) >= 500
                unanswered = unanswered or isinstance(exc, ILSUnavailable)
                raise

        await self._call(what, send)

    async def _holds(self, sent: dict[str, Any], cid: str) -> bool:
        stored = await self._instance(str(sent["id"]), cid)
        if stored is None or stored.get("_version") != sent["_version"] + 1:
            return False
        return all(stored.get(k) == v for k, v in sent.items() if k not in ("_version", "metadata"))

    async def _upsert_once(self, instance: dict[str, Any], cid: str, *, what: str) -> None:
        [outcome] = await self.client.upsert_instances([instance], correlation_id=cid)
        if outcome.status is UpsertStatus.VERSION_CONFLICT:
            raise ILSVersionConflict(f"{self.label}: {what}: {outcome.message}", status=409)
        if outcome.status is UpsertStatus.REJECTED:
            # FOLIO's 422 validation message goes to the report as the failure's reason.
            raise ILSRejected(
                f"{self.label}: {what}: {outcome.message}", status=422, reason="folio_invalid"
            )

    async def _instance(self, instance_id: str, cid: str) -> dict[str, Any] | None:
        found = await self._call(
            f"get instance {instance_id}",
            lambda: self.client.get_instances([instance_id], correlation_id=cid),
        )
        return found[0] if found else None

    async def _instances_by_stamps(self, stamps: Collection[str], cid: str) -> list[dict[str, Any]]:
        values = [STAMP_SOURCE + s for s in stamps]
        return await self._call(
            "find instances by stamp",
            lambda: self.client.find_instances_by_identifier(
                _STAMP_TYPE, values, correlation_id=cid
            ),
        )

    async def _save_marc(self, instance: dict[str, Any], record: pymarc.Record, cid: str) -> None:
        snapshot = await self._snapshot_id(cid)
        [outcome] = await self._call(
            "save source record",
            lambda: self.client.save_source_records(
                [(instance, record)], snapshot, correlation_id=cid
            ),
        )
        if outcome.error is not None:
            raise ILSRejected(
                f"{self.label}: SRS refused the MARC of instance {instance['id']}: {outcome.error}",
                reason="folio_invalid",
            )


def _stamps_of(instance: dict[str, Any]) -> set[str]:
    """The create stamps an instance carries as identifiers (mapped from our 035)."""
    values = (str(i.get("value", "")) for i in instance.get("identifiers", []))
    return {v[len(STAMP_SOURCE) :].strip() for v in values if v.startswith(STAMP_SOURCE)}


__all__ = ["FolioAdapter"]
