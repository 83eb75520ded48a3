"""FOLIO's batched read (FolioAdapter.get_biblios, FolioWrites.read_many) against the FOLIO
emulator over real HTTP, real LoC records: one instance retrieve and one SRS fetch for many
biblios, each copy as get_biblio reads it, and its `_version` kept for the next update."""

from __future__ import annotations

import copy
import io

import pymarc
import pytest
from tests.folio_emulator import Okapi, edit_in_folio, run, stamped

from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import ILSVersionConflict
from catalog_sync.ils.requestcount import counting, request_kind
from catalog_sync.models import RequestKind
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)
CID = "test-folio-reads"
NO_SUCH = "00000000-0000-4000-8000-000000000000"


def test_many_copies_are_read_in_two_requests_each_as_get_biblio_reads_it(
    folio: ServiceProcess, loc_records: list[pymarc.Record]
) -> None:
    async def body(ils: ILSClient) -> tuple[dict[str, bytes], dict[str, bytes | None], int]:
        ids = [
            await ils.create_biblio(stamped(r, f"reads-{i}"), correlation_id=CID)
            for i, r in enumerate(loc_records[:4])
        ]
        with counting() as tally, request_kind(RequestKind.UPDATE):
            batch = await ils.get_biblios([*ids, NO_SUCH], correlation_id=CID)
        sent = sum(tally.as_report()[RequestKind.UPDATE].values())
        alone = {i: await ils.get_biblio(i, correlation_id=CID) for i in ids}
        return batch, alone, sent

    batch, alone, sent = run(folio.url, body)
    assert sent == 2  # instances by CQL, then their MARC from SRS
    assert sorted(batch) == sorted(alone)  # the id FOLIO has no instance for is absent
    for biblio_id, xml in batch.items():
        held = alone[biblio_id]
        assert held is not None
        [mine] = pymarc.parse_xml_to_array(io.BytesIO(xml))
        [theirs] = pymarc.parse_xml_to_array(io.BytesIO(held))
        assert mine.as_marc() == theirs.as_marc()


def test_an_update_after_a_batched_read_echoes_the_version_that_read_saw(
    folio: ServiceProcess, okapi: Okapi, loc_records: list[pymarc.Record]
) -> None:
    record = loc_records[0]

    async def body(ils: ILSClient) -> None:
        biblio_id = await ils.create_biblio(stamped(record, "reads-drift"), correlation_id=CID)
        assert biblio_id in await ils.get_biblios([biblio_id], correlation_id=CID)
        # Someone edits the instance in FOLIO after our read: our write is drift (409).
        edit_in_folio(okapi, biblio_id)
        changed = copy.deepcopy(record)
        changed["245"]["a"] = "Changed title /"
        await ils.update_biblio(biblio_id, marcxml(changed), correlation_id=CID)

    with pytest.raises(ILSVersionConflict):
        run(folio.url, body)
