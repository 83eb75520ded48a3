"""The FOLIO adapter (ILSClient) against the FOLIO emulator over real HTTP, real LoC records."""

from __future__ import annotations

import asyncio
import copy
import io
from datetime import UTC, datetime

import httpx
import pymarc
import pytest
from tests.folio_emulator import (
    Okapi,
    edit_in_folio,
    instances,
    run,
    settings,
    srs_record,
    stamped,
)

from catalog_sync.changes.identifiers import record_identifiers
from catalog_sync.changes.stamp import marcxml_stamp
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import open_client
from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import ILSAuthError, ILSRejected, ILSVersionConflict
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.ils.folio.session import FolioTokenRefused, FolioUnknownTenant
from catalog_sync.ils.requestcount import counting, request_kind
from catalog_sync.models import RequestKind
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
CID = "test-folio-adapter"


def test_flavour_folio_selects_the_folio_adapter(folio: ServiceProcess) -> None:
    assert isinstance(open_client(settings(folio.url)), FolioAdapter)


def test_create_links_marc_in_srs_to_the_instance_and_reads_it_back(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    record = loc_records[2]  # carries an ISBN and an LCCN
    sent = stamped(record, "k-create-1")

    async def body(ils: ILSClient) -> tuple[str, bytes | None]:
        biblio_id = await ils.create_biblio(sent, correlation_id=CID)
        return biblio_id, await ils.get_biblio(biblio_id, correlation_id=CID)

    biblio_id, copy_back = run(folio.url, body)
    [instance] = instances(okapi)
    assert instance["id"] == biblio_id and instance["source"] == "MARC"
    srs = srs_record(okapi, biblio_id)
    assert srs.status_code == 200
    assert srs.json()["externalIdsHolder"]["instanceId"] == biblio_id
    assert copy_back is not None and marcxml_stamp(copy_back) == "k-create-1"
    [back] = pymarc.parse_xml_to_array(io.BytesIO(copy_back))
    assert back["245"]["a"] == record["245"]["a"]


def test_find_by_numbers_and_find_created_use_cql_on_identifiers(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    with_isbn = [r for r in loc_records if record_identifiers(r)["isbn"]][:3]
    assert len(with_isbn) == 3

    async def body(ils: ILSClient) -> tuple[list[str], object, dict[str, str]]:
        ids = [
            await ils.create_biblio(stamped(r, f"k-find-{n}"), correlation_id=CID)
            for n, r in enumerate(with_isbn)
        ]
        isbns = [record_identifiers(r)["isbn"][0] for r in with_isbn[:2]]
        found = await ils.find_by_numbers({"isbn": isbns}, correlation_id=CID)
        created = await ils.find_created(
            ["k-find-1", "k-find-2", "k-none"],
            title=None,
            source="DLC",
            since=datetime.now(UTC),
            correlation_id=CID,
        )
        return ids, found, created

    ids, found, created = run(folio.url, body)
    assert sorted(c.biblio_id for c in found) == sorted(ids[:2])  # type: ignore[attr-defined]
    assert created == {ids[1]: "k-find-1", ids[2]: "k-find-2"}


def test_update_with_a_stale_version_is_drift(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    record = loc_records[0]

    async def body(ils: ILSClient) -> None:
        biblio_id = await ils.create_biblio(stamped(record, "k-drift"), correlation_id=CID)
        assert await ils.get_biblio(biblio_id, correlation_id=CID) is not None
        edit_in_folio(okapi, biblio_id)  # after our read
        changed = copy.deepcopy(record)
        changed["245"]["a"] = "Changed title /"
        await ils.update_biblio(biblio_id, marcxml(changed), correlation_id=CID)

    with pytest.raises(ILSVersionConflict, match="optimistic locking"):
        run(folio.url, body)
    [instance] = instances(okapi)
    assert instance["title"] != "Changed title" and instance["_version"] == 2


def test_update_after_a_fresh_read_keeps_folio_fields_and_bumps_version(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    record = loc_records[1]

    async def body(ils: ILSClient) -> bytes | None:
        biblio_id = await ils.create_biblio(stamped(record, "k-upd"), correlation_id=CID)
        await ils.get_biblio(biblio_id, correlation_id=CID)
        changed = copy.deepcopy(record)
        changed["245"]["a"] = "A new title /"
        await ils.update_biblio(biblio_id, marcxml(changed), correlation_id=CID)
        return await ils.get_biblio(biblio_id, correlation_id=CID)

    copy_back = run(folio.url, body)
    [instance] = instances(okapi)
    assert instance["title"].startswith("A new title") and instance["_version"] == 2
    assert copy_back is not None and b"A new title" in copy_back


def test_folio_validation_error_is_a_per_record_rejection_with_its_message(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    record = loc_records[0]

    async def body(ils: ILSClient) -> None:
        assert isinstance(ils, FolioAdapter)
        biblio_id = await ils.create_biblio(stamped(record, "k-422"), correlation_id=CID)
        await ils.get_biblio(biblio_id, correlation_id=CID)
        # A read copy carrying a value FOLIO's schema refuses (statusId must be a UUID): the
        # update it leads to gets RMB's 422, whose message must reach the record's failure.
        ils._read[biblio_id] = {**ils._read[biblio_id], "statusId": "withdrawn"}
        await ils.update_biblio(biblio_id, marcxml(record), correlation_id=CID)

    with pytest.raises(ILSRejected, match="must match") as caught:
        run(folio.url, body)
    assert caught.value.status == 422 and caught.value.reason == "folio_invalid"


def test_lost_create_answer_is_found_by_its_stamp_not_made_twice(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    control = EmulatorControl(folio.url)
    sent = stamped(loc_records[4], "k-lost")

    async def body(ils: ILSClient) -> str:
        await ils.check_access(correlation_id=CID)  # logged in before the fault
        control.set_faults(drop_rate=1.0, drop_after_share=1.0, seed=1)
        task = asyncio.create_task(ils.create_biblio(sent, correlation_id=CID))
        await asyncio.sleep(0.3)  # the first POST is applied and its answer dropped
        control.clear_faults()
        return await task

    biblio_id = run(folio.url, body)
    assert control.counters().get("dropped_after_apply", 0) >= 1
    assert [i["id"] for i in instances(okapi)] == [biblio_id]
    srs = srs_record(okapi, biblio_id)
    assert srs.status_code == 200


def test_an_update_whose_answer_was_lost_is_no_drift_when_resent(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    control = EmulatorControl(folio.url)
    record = loc_records[3]
    changed = copy.deepcopy(record)
    changed["245"]["a"] = "Resent title /"

    async def body(ils: ILSClient) -> bytes | None:
        biblio_id = await ils.create_biblio(stamped(record, "k-lost-upd"), correlation_id=CID)
        await ils.get_biblio(biblio_id, correlation_id=CID)
        control.set_faults(drop_rate=1.0, drop_after_share=1.0, seed=2)
        task = asyncio.create_task(
            ils.update_biblio(biblio_id, marcxml(changed), correlation_id=CID)
        )
        await asyncio.sleep(0.3)  # the PUT is applied, its answer (and a resend's) dropped
        control.clear_faults()
        await task
        return await ils.get_biblio(biblio_id, correlation_id=CID)

    copy_back = run(folio.url, body)
    assert control.counters().get("dropped_after_apply", 0) >= 1
    [instance] = instances(okapi)
    assert instance["title"].startswith("Resent title") and instance["_version"] == 2
    assert copy_back is not None and b"Resent title" in copy_back


def test_unknown_tenant_fails_at_once_naming_it(folio: ServiceProcess) -> None:
    with pytest.raises(FolioUnknownTenant, match="nosuchlib"):
        run(folio.url, lambda ils: ils.check_access(correlation_id=CID), tenant="nosuchlib")
    assert EmulatorControl(folio.url).counters()["requests"] == 1


def test_revoked_token_is_refreshed_once_then_fails_without_retries(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    control = EmulatorControl(folio.url)

    async def body(ils: ILSClient) -> str:
        await ils.check_access(correlation_id=CID)
        httpx.post(f"{folio.url}/_emulator/tokens/revoke", timeout=10).raise_for_status()
        before = control.counters()["requests"]
        try:
            return await ils.check_access(correlation_id=CID)
        finally:
            # the call, one refresh (refused) and nothing more
            assert control.counters()["requests"] - before == 2

    with pytest.raises(FolioTokenRefused, match="after one refresh") as caught:
        run(folio.url, body)
    assert isinstance(caught.value, ILSAuthError)


def test_every_request_to_folio_is_counted_as_the_emulator_counts_it(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    # The run report's requests per written record (issue 17) hold for FOLIO too: the session
    # counts each attempt, its logins and refreshes as shared work, as the Koha transport does.
    control = EmulatorControl(folio.url)
    before = control.counters().get("requests", 0)

    async def creates(ils: ILSClient) -> list[str]:
        with request_kind(RequestKind.CREATE):
            return [
                await ils.create_biblio(stamped(r, f"count-{i}"), correlation_id=f"{CID}-{i}")
                for i, r in enumerate(loc_records[:3])
            ]

    with counting() as tally:
        ids = run(folio.url, creates)

    assert len(set(ids)) == 3
    sent = tally.as_report()
    assert sent[RequestKind.SHARED] == {"POST": 1}  # the login
    assert sum(sent[RequestKind.CREATE].values()) >= 3  # at least one write per create
    assert sum(n for methods in sent.values() for n in methods.values()) == (
        control.counters()["requests"] - before
    )
