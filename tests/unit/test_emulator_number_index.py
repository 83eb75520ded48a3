"""The emulator's trigram index on standard numbers narrows `-like` searches without changing
their answers: same hits as testing every row, kept in step on update and delete, and built for
a catalog saved before the index existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pymarc
import pytest

from catalog_sync.changes.identifiers import record_identifiers
from catalog_sync.emulator.query import SUBSTRING_INDEX, order_clause, where_clause
from catalog_sync.emulator.store import CatalogStore
from catalog_sync.emulator.store_items import WriteContext
from catalog_sync.ils.koha_query import numbers_query

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "loc-books-2016-part01-first1000.mrc"
# LoC's open-access books (public domain), shared corpus: most of these carry ISBNs.
LOC_FILE = "loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc"
CTX = WriteContext("POST", "/api/v1/biblios", None, b"")


def sample(path: Path = SAMPLE, count: int = 1000) -> list[pymarc.Record]:
    with path.open("rb") as fh:
        reader = pymarc.MARCReader(fh, to_unicode=True, force_utf8=True)
        return [r for r, _ in zip(reader, range(count), strict=False) if r is not None]


def isbns(record: pymarc.Record) -> list[str]:
    return list(record_identifiers(record)["isbn"])


def found(store: CatalogStore, query: object) -> list[int]:
    where, args = where_clause([query])
    rows = store.list_biblios(where, args, order_clause([]), 1000, 0)
    return [int(row["biblio_id"]) for row in rows]


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path
) -> tuple[Path, list[pymarc.Record]]:
    source = corpus_dir / LOC_FILE
    if not source.exists():
        pytest.skip(f"{source} not in the shared corpus")
    path = tmp_path_factory.mktemp("numbers") / "catalog.sqlite"
    store = CatalogStore(path)
    records = sample(source, 5000)
    for record in records:
        store.add_biblio(record, "", CTX)
    store.close()
    return path, records


def test_a_number_search_is_answered_through_the_index(
    loaded: tuple[Path, list[pymarc.Record]],
) -> None:
    store = CatalogStore(loaded[0])
    where, args = where_clause([numbers_query({"isbn": ["9780520078437"]})])
    plan = " ".join(
        str(row[3])
        for row in store._db.execute(f"EXPLAIN QUERY PLAN SELECT * FROM biblios{where}", args)
    )
    store.close()
    assert f"SCAN {SUBSTRING_INDEX} VIRTUAL TABLE" in plan, plan


def test_batched_isbn_searches_find_what_testing_every_row_finds(
    loaded: tuple[Path, list[pymarc.Record]],
) -> None:
    path, records = loaded
    store = CatalogStore(path)
    raw = {
        int(row["biblio_id"]): (row["isbn"] or "").lower()
        for row in store._db.execute("SELECT biblio_id, isbn FROM biblios")
    }
    with_isbns = [r for r in records if isbns(r)]
    assert len(with_isbns) > 300  # real ISBNs, several batches of them
    searched = 0
    for start in range(0, len(with_isbns), 40):
        values = [v for r in with_isbns[start : start + 40] for v in isbns(r)]
        query = numbers_query({"isbn": values})
        patterns = [c["-like"].strip("%").lower() for part in query for c in part["isbn"]]
        expected = sorted(i for i, text in raw.items() if any(p in text for p in patterns))
        assert found(store, query) == expected
        assert expected  # each batch's own records are in the catalog
        searched += len(values)
    store.close()
    assert searched >= len(with_isbns)


def test_the_index_follows_updates_and_deletes(tmp_path: Path) -> None:
    store = CatalogStore(tmp_path / "catalog.sqlite")
    record = next(r for r in sample() if isbns(r))
    old = isbns(record)[0]
    biblio_id = store.add_biblio(record, "", CTX)
    assert found(store, numbers_query({"isbn": [old]})) == [biblio_id]

    record.remove_fields("020")
    record.add_ordered_field(
        pymarc.Field("020", [" ", " "], [pymarc.Subfield("a", "9780306406157")])
    )
    assert store.update_biblio(biblio_id, record, CTX)
    assert found(store, numbers_query({"isbn": [old]})) == []
    assert found(store, numbers_query({"isbn": ["9780306406157"]})) == [biblio_id]

    assert store.delete_biblio(biblio_id, CTX)
    assert found(store, numbers_query({"isbn": ["9780306406157"]})) == []
    store.close()


def test_a_catalog_saved_before_the_index_is_indexed_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    store = CatalogStore(path)
    record = next(r for r in sample() if isbns(r))
    biblio_id = store.add_biblio(record, "", CTX)
    store.close()
    with sqlite3.connect(path) as db:  # as an emulator from before the index left it
        for trigger in ("biblio_numbers_ai", "biblio_numbers_ad", "biblio_numbers_au"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute(f"DROP TABLE {SUBSTRING_INDEX}")
    store = CatalogStore(path)
    assert found(store, numbers_query({"isbn": [isbns(record)[0]]})) == [biblio_id]
    store.close()
