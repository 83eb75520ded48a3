"""The emulator's write counter equals the rows of its write log, without counting them.

`/_emulator/counters` is polled ten times a second by the benchmarks; it used to COUNT the whole
log. Its key bounds must agree with the log through creates, updates, refused writes, a rolled
back transaction and a reset (FOLIO's reset keeps the AUTOINCREMENT sequence going).
"""

from __future__ import annotations

from pathlib import Path

import pymarc
import pytest

from catalog_sync.emulator.folio.store import FolioStore
from catalog_sync.emulator.folio.store import WriteContext as FolioWrite
from catalog_sync.emulator.store import CatalogStore
from catalog_sync.emulator.store_items import WriteContext

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marc" / "test_data.utf8.mrc"


def _agrees(store: CatalogStore | FolioStore) -> int:
    total = store.write_total()
    assert total == len(store.writes())
    return total


def test_koha_log_total_follows_writes_refusals_and_reset(tmp_path: Path) -> None:
    with FIXTURE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh) if r is not None][:4]
    store = CatalogStore(tmp_path / "koha.db")
    ctx = WriteContext("POST", "/api/v1/biblios", "req-1", b"payload")
    assert _agrees(store) == 0
    ids = [store.add_biblio(r, "", ctx) for r in records[:3]]
    assert _agrees(store) == 3
    assert store.update_biblio(ids[0], records[3], ctx)
    assert not store.update_biblio(10_000, records[3], ctx)  # refused: nothing logged
    assert store.delete_biblio(ids[1], ctx)
    assert _agrees(store) == 5
    store.reset()
    assert _agrees(store) == 0
    store.add_biblio(records[0], "", ctx)
    assert _agrees(store) == 1


def test_folio_log_total_after_reset_and_rollback(tmp_path: Path) -> None:
    store = FolioStore(tmp_path / "folio.db")
    ctx = FolioWrite("POST", "/instance-storage/batch/synchronous", "req-1", None)
    for n in range(5):
        with store.transaction():
            store.log_write(ctx, "instance", f"id-{n}", 201)
    assert _agrees(store) == 5
    store.reset()  # empties the log; the sequence goes on from 5
    assert _agrees(store) == 0
    with store.transaction():
        store.log_write(ctx, "instance", "id-a", 201)
    with pytest.raises(RuntimeError), store.transaction():
        store.log_write(ctx, "instance", "id-b", 201)
        raise RuntimeError("the batch failed after its log entry")
    with store.transaction():
        store.log_write(ctx, "instance", "id-c", 201)
    assert _agrees(store) == 2
