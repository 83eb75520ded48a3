"""FOLIO calls for a catalog load: batch instance upserts, SRS MARC records, CQL matching, items.

How it plugs in: catalog_sync.ils.folio.adapter.FolioAdapter (ADAPTERS["folio"]) holds a
FolioClient and maps create_biblio / update_biblio -> `upsert_instances` + `save_source_records`,
get_biblio -> `get_instances` (for `_version`) + `get_source_record`, find_by_numbers /
find_created -> `find_instances_by_identifier`. The commit path calls the adapter record by
record; the adapter gathers concurrent calls into these batch calls (ils.folio.writes).
Connection extras: `flavour: folio`, `tenant`; login and password are the Connection's own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import httpx
import pymarc

from catalog_sync.ils.errors import ILSError, ILSRejected
from catalog_sync.ils.folio.records import cql_escape as _cql_escape
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES
from catalog_sync.ils.folio.session import OkapiSession, folio_message

INSTANCE_BATCH = "/instance-storage/batch/synchronous"
HOLDINGS_BATCH = "/holdings-storage/batch/synchronous"
ITEM_BATCH = "/item-storage/batch/synchronous"
_PAGE = 1000  # records per retrieve page


E = TypeVar("E")  # an entry of an SRS batch
_Entry = tuple[dict[str, Any], pymarc.Record]  # an instance and its MARC
_Stored = tuple[dict[str, Any], pymarc.Record, dict[str, Any]]  # ... and its SRS record


class UpsertStatus(StrEnum):
    APPLIED = "applied"
    VERSION_CONFLICT = "version_conflict"  # 409: FOLIO's copy changed since it was read (drift)
    REJECTED = "rejected"  # 422: FOLIO's validation refused this record


@dataclass(frozen=True)
class UpsertOutcome:
    """What became of one record of a batch; `message` is FOLIO's own words on failure."""

    record_id: str
    status: UpsertStatus
    message: str | None = None


@dataclass(frozen=True)
class _Batch:
    """A batch synchronous endpoint, its body's array property and the `upsert` it is sent."""

    path: str
    key: str
    upsert: str


@dataclass(frozen=True)
class SourceRecordOutcome:
    instance_id: str
    record_id: str | None
    error: str | None = None


class FolioClient:
    """The calls, over one OkapiSession (`async with OkapiSession(s) as session:`)."""

    def __init__(self, session: OkapiSession, batch_size: int = 500) -> None:
        self.session = session
        self.batch_size = batch_size
        # Records per SRS batch request: starts at batch_size, halved for good on a 413.
        self.srs_batch = batch_size

    # -- instances ---------------------------------------------------------------------------

    async def upsert_instances(
        self, instances: Sequence[dict[str, Any]], *, correlation_id: str
    ) -> list[UpsertOutcome]:
        """Create or update instances, one outcome per record in input order (see save_batch)."""
        return await self.save_batch(
            INSTANCE_BATCH, "instances", instances, upsert=True, correlation_id=correlation_id
        )

    async def save_batch(
        self,
        path: str,
        key: str,
        records: Sequence[dict[str, Any]],
        *,
        upsert: bool,
        correlation_id: str,
    ) -> list[UpsertOutcome]:
        """Records through a batch synchronous endpoint (instances, holdings, items), one
        outcome per record in input order; `upsert` False makes an id FOLIO holds a refusal.

        The endpoint is all or nothing, so a 409/413/422 for a batch splits it in halves and
        retries each: one bad record costs about 2·log2(n) extra requests and blocks no other.
        """
        sent = [dict(r) for r in records]
        for record in sent:
            record.setdefault("id", str(uuid.uuid4()))
        outcomes: dict[str, UpsertOutcome] = {}
        batch = _Batch(path, key, "true" if upsert else "false")
        for start in range(0, len(sent), self.batch_size):
            await self._save(batch, sent[start : start + self.batch_size], outcomes, correlation_id)
        return [outcomes[str(r["id"])] for r in sent]

    async def _save(
        self,
        where: _Batch,
        batch: list[dict[str, Any]],
        outcomes: dict[str, UpsertOutcome],
        cid: str,
    ) -> None:
        response = await self.session.request(
            "POST",
            where.path,
            correlation_id=cid,
            json={where.key: batch},
            params={"upsert": where.upsert},
        )
        if response.status_code == 201:
            outcomes.update(
                (str(r["id"]), UpsertOutcome(str(r["id"]), UpsertStatus.APPLIED)) for r in batch
            )
            return
        if response.status_code not in (409, 413, 422):
            raise _unexpected(response, f"batch {where.key} upsert")
        if len(batch) > 1:
            middle = len(batch) // 2
            await self._save(where, batch[:middle], outcomes, cid)
            await self._save(where, batch[middle:], outcomes, cid)
            return
        record_id = str(batch[0]["id"])
        if response.status_code == 413:
            raise ILSRejected(f"FOLIO refused even a one-record batch as too large ({record_id})")
        status = (
            UpsertStatus.VERSION_CONFLICT if response.status_code == 409 else UpsertStatus.REJECTED
        )
        outcomes[record_id] = UpsertOutcome(record_id, status, folio_message(response))

    async def get_instances(
        self, ids: Iterable[str], *, correlation_id: str
    ) -> list[dict[str, Any]]:
        """The stored instances (with hrid and _version) for `ids`."""
        clauses = [f'id=="{i}"' for i in ids]
        return await self._query_each(
            "/instance-storage/instances", "instances", clauses, correlation_id
        )

    async def find_instances_by_hrid(
        self, hrids: Iterable[str], *, correlation_id: str
    ) -> list[dict[str, Any]]:
        clauses = [f'hrid=="{_cql_escape(h)}"' for h in hrids]
        return await self._query_each(
            "/instance-storage/instances", "instances", clauses, correlation_id
        )

    async def find_instances_by_identifier(
        self, kind: str, values: Iterable[str], *, correlation_id: str
    ) -> list[dict[str, Any]]:
        """Instances holding any of `values` as an identifier of FOLIO type `kind` (e.g. ISBN)."""
        type_id = IDENTIFIER_TYPES[kind]
        clauses = [f'identifiers =/@identifierTypeId={type_id} "{_cql_escape(v)}"' for v in values]
        return await self._query_each(
            "/instance-storage/instances", "instances", clauses, correlation_id
        )

    async def find_instances_where(
        self, clauses: Sequence[str], *, correlation_id: str
    ) -> list[dict[str, Any]]:
        """Instances matching any of the CQL `clauses`, a batch of clauses per request."""
        return await self.retrieve_where(
            "/instance-storage/instances", "instances", clauses, correlation_id=correlation_id
        )

    async def retrieve_where(
        self, path: str, key: str, clauses: Sequence[str], *, correlation_id: str
    ) -> list[dict[str, Any]]:
        """Records of the collection at `path` (holdings, items ...) matching any clause."""
        return await self._query_each(path, key, list(clauses), correlation_id)

    async def _query_each(
        self, path: str, key: str, clauses: list[str], cid: str
    ) -> list[dict[str, Any]]:
        """Records matching any clause, a batch of clauses per request.

        POST {path}/retrieve carries the CQL in the body (retrieveEntitiesDto.json), so a batch
        of values is one request where a GET would need one per ~50 to fit a URL.
        """
        found: list[dict[str, Any]] = []
        for start in range(0, len(clauses), self.batch_size):
            query = " or ".join(clauses[start : start + self.batch_size])
            offset = 0
            while True:  # keep paging while pages are full: totalRecords may be an estimate
                response = await self.session.request(
                    "POST",
                    f"{path}/retrieve",
                    correlation_id=cid,
                    json={"query": query, "offset": offset, "limit": _PAGE},
                )
                if response.status_code != 200:
                    raise _unexpected(response, f"retrieve {key}")
                page: list[dict[str, Any]] = response.json()[key]
                found += page
                if len(page) < _PAGE:
                    break
                offset += len(page)
        return found

    # -- source record storage ---------------------------------------------------------------

    async def create_snapshot(self, *, correlation_id: str) -> str:
        snapshot_id = str(uuid.uuid4())
        response = await self.session.request(
            "POST",
            "/source-storage/snapshots",
            correlation_id=correlation_id,
            json={"jobExecutionId": snapshot_id, "status": "PROCESSING_IN_PROGRESS"},
        )
        if response.status_code != 201:
            raise _unexpected(response, "create snapshot")
        return snapshot_id

    async def get_source_record(
        self, instance_id: str, *, correlation_id: str
    ) -> dict[str, Any] | None:
        """The instance's MARC record in SRS (record.json), None when it has none."""
        response = await self.session.request(
            "GET",
            f"/source-storage/records/{instance_id}/formatted",
            correlation_id=correlation_id,
            params={"idType": "INSTANCE"},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _unexpected(response, "get source record")
        record: dict[str, Any] = response.json()
        return record

    async def fetch_source_records(
        self, instance_ids: Sequence[str], *, correlation_id: str
    ) -> dict[str, dict[str, Any]]:
        """instance id -> its current SRS record (id, parsedRecord), a batch per request."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(instance_ids), self.batch_size):
            response = await self.session.request(
                "POST",
                "/source-storage/batch/parsed-records/fetch",
                correlation_id=correlation_id,
                json={
                    "conditions": {
                        "idType": "INSTANCE",
                        "ids": list(instance_ids[start : start + self.batch_size]),
                    },
                    "recordType": "MARC_BIB",
                    "includeDeleted": False,
                },
            )
            if response.status_code != 200:
                raise _unexpected(response, "fetch source records")
            for record in response.json()["records"]:
                found[record["externalIdsHolder"]["instanceId"]] = record
        return found

    async def save_source_records(
        self,
        entries: Sequence[tuple[dict[str, Any], pymarc.Record]],
        snapshot_id: str,
        *,
        correlation_id: str,
    ) -> list[SourceRecordOutcome]:
        """MARC for each (stored instance, record): existing SRS records are found in one
        fetch and updated in one batch PUT; the others are created in one batch POST."""
        existing = await self.fetch_source_records(
            [i["id"] for i, _ in entries], correlation_id=correlation_id
        )
        new = [(i, m) for i, m in entries if i["id"] not in existing]
        old = [(i, m, existing[i["id"]]) for i, m in entries if i["id"] in existing]
        outcomes = {
            o.instance_id: o
            for o in await self.create_source_records(
                new, snapshot_id, correlation_id=correlation_id
            )
        }

        def put(
            chunk: Sequence[tuple[dict[str, Any], pymarc.Record, dict[str, Any]]],
        ) -> Awaitable[httpx.Response]:
            bodies = [_srs_record(i, m, snapshot_id, record) for i, m, record in chunk]
            return self.session.request(
                "PUT",
                "/source-storage/batch/parsed-records",
                correlation_id=correlation_id,
                json={"records": bodies, "totalRecords": len(bodies)},
            )

        for chunk, response in await self._srs_batches(old, put):
            if response.status_code != 200:
                raise _unexpected(response, "batch update parsed records")
            result = response.json()
            done = {r["id"] for r in result["parsedRecords"]}
            why = "; ".join(result.get("errorMessages", [])) or "not updated"
            for instance, _, record in chunk:
                error = None if record["id"] in done else why
                outcomes[instance["id"]] = SourceRecordOutcome(instance["id"], record["id"], error)
        return [outcomes[i["id"]] for i, _ in entries]

    async def _srs_batches(
        self, items: Sequence[E], send: Callable[[Sequence[E]], Awaitable[httpx.Response]]
    ) -> list[tuple[Sequence[E], httpx.Response]]:
        """`items` sent in batches, each with its answer. A 413 halves the batch and the size
        that passed is kept for the rest: SRS's limit is the server's, and a batch it refuses
        as too large was not applied, so sending its halves writes nothing twice."""
        answers: list[tuple[Sequence[E], httpx.Response]] = []
        start = 0
        while start < len(items):
            chunk = items[start : start + self.srs_batch]
            response = await send(chunk)
            if response.status_code == 413 and len(chunk) > 1:
                self.srs_batch = max(1, len(chunk) // 2)
                continue
            answers.append((chunk, response))
            start += len(chunk)
        return answers

    async def create_source_records(
        self,
        entries: Sequence[tuple[dict[str, Any], pymarc.Record]],
        snapshot_id: str,
        *,
        correlation_id: str,
    ) -> list[SourceRecordOutcome]:
        """New SRS records for instances known to have none (an initial load): no look-ups."""
        outcomes: list[SourceRecordOutcome] = []

        def post(
            chunk: Sequence[tuple[dict[str, Any], pymarc.Record]],
        ) -> Awaitable[httpx.Response]:
            bodies = [_srs_record(instance, marc, snapshot_id, None) for instance, marc in chunk]
            return self.session.request(
                "POST",
                "/source-storage/batch/records",
                correlation_id=correlation_id,
                json={"records": bodies, "totalRecords": len(bodies)},
            )

        for chunk, response in await self._srs_batches(entries, post):
            if response.status_code != 201:
                raise _unexpected(response, "batch source records")
            result = response.json()
            saved = {r["externalIdsHolder"]["instanceId"]: r["id"] for r in result["records"]}
            # SRS's errorMessages name no record, so every unsaved one carries all of them.
            why = "; ".join(result.get("errorMessages", [])) or "not saved"
            for instance, _ in chunk:
                record_id = saved.get(instance["id"])
                outcomes.append(
                    SourceRecordOutcome(instance["id"], record_id, None if record_id else why)
                )
        return outcomes


def _srs_record(
    instance: dict[str, Any],
    marc: pymarc.Record,
    snapshot_id: str,
    existing: dict[str, Any] | None,
) -> dict[str, Any]:
    """record.json for `marc`, linked to the instance as FOLIO keeps MARC-source instances."""
    record_id = existing["id"] if existing else str(uuid.uuid4())
    parsed = marc.as_dict()
    body: dict[str, Any] = {
        "id": record_id,
        "snapshotId": snapshot_id,
        "matchedId": existing.get("matchedId", record_id) if existing else record_id,
        "recordType": "MARC_BIB",
        # MARC-in-JSON in both parts: an ISO 2709 rawRecord would need the leader's encoding
        # flag to be right, which vendor files often get wrong.
        "rawRecord": {"content": json.dumps(parsed, ensure_ascii=False)},
        "parsedRecord": {"content": parsed},
        "externalIdsHolder": {"instanceId": instance["id"], "instanceHrid": instance["hrid"]},
    }
    if existing and "generation" in existing:
        body["generation"] = existing["generation"]
    return body


def _unexpected(response: httpx.Response, what: str) -> ILSError:
    return ILSError(
        f"FOLIO {what}: {response.status_code} {folio_message(response)}",
        status=response.status_code,
    )
