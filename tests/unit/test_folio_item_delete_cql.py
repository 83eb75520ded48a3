"""The CQL of a batch of FOLIO item deletes: exactly the items as read, cut to fit a URL."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from catalog_sync.emulator.folio.cql import compile_cql
from catalog_sync.ils.folio.cqldelete import QUERY_BYTES, delete_cql, delete_shares


def items(count: int, version: int | None = 1) -> list[dict[str, object]]:
    return [{"id": str(uuid.UUID(int=n + 1)), "_version": version} for n in range(count)]


def test_each_item_is_selected_by_its_id_and_the_version_it_was_read_with() -> None:
    read = [*items(2, 1), {"id": str(uuid.UUID(int=9)), "_version": 3}]
    cql = delete_cql(read)
    assert cql == (
        f'(_version==/number 1 and id==("{read[0]["id"]}" or "{read[1]["id"]}"))'
        f' or (_version==/number 3 and id==("{read[2]["id"]}"))'
    )
    compiled = compile_cql("item", cql)  # the emulator reads it as RMB would
    assert compiled.args == (1, read[0]["id"], read[1]["id"], 3, read[2]["id"])


def test_an_item_read_without_a_version_is_selected_by_id_alone() -> None:
    [unversioned] = items(1, None)
    assert delete_cql([unversioned]) == f'(id==("{unversioned["id"]}"))'


def test_a_batch_is_cut_into_consecutive_shares_each_within_the_url_budget() -> None:
    batch = items(256)
    shares = delete_shares(batch)
    assert [n for share in shares for n in share] == list(range(256))
    sizes = [len(quote(delete_cql([batch[n] for n in s]), safe="")) for s in shares]
    assert max(sizes) <= QUERY_BYTES and len(shares) == 4, sizes
    assert all(size > QUERY_BYTES - 60 for size in sizes[:-1])  # each share filled


def test_an_item_too_long_for_the_budget_still_goes_alone() -> None:
    assert delete_shares(items(3), budget=10) == [range(0, 1), range(1, 2), range(2, 3)]
    assert delete_shares([]) == []
