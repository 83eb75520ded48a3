"""Chunking a landing file: deterministic ids, every byte once, no record cut."""

from __future__ import annotations

import itertools
import shutil
import tracemalloc
from pathlib import Path

import pytest

from catalog_sync.marc.errors import EmptyFileError
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.reader import iter_chunk, read_record_at
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkRef, LandingFile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "marc"


def landing(name: str) -> LandingFile:
    return describe_landing(FIXTURES / name, vendor="demo")


def assert_contiguous(refs: list[ChunkRef]) -> None:
    for before, after in itertools.pairwise(refs):
        assert after.start == before.end
        assert after.first_record == before.first_record + before.record_count


@pytest.mark.parametrize(
    "name",
    [
        "test.dat",
        "test_data.utf8.mrc",
        "test_data.utf8.marc.xml",
        "collection.xml",
        "chalmers_bib_holdings_pair.xml",
    ],
)
def test_splitting_the_same_file_twice_gives_identical_chunk_ids(name: str) -> None:
    first = split_file(landing(name), records_per_chunk=4)
    second = split_file(landing(name), records_per_chunk=4)
    assert [r.chunk_id for r in first] == [r.chunk_id for r in second]
    assert first == second
    assert len({r.chunk_id for r in first}) == len(first)


def test_iso2709_chunks_cover_every_byte_once_and_cut_no_record() -> None:
    lf = landing("test_data.utf8.mrc")
    data = Path(lf.path).read_bytes()
    refs = split_file(lf, records_per_chunk=7)
    assert refs[0].start == 0 and refs[-1].end == len(data)
    assert_contiguous(refs)
    assert [r.record_count for r in refs] == [7, 7, 7, 7, 2]
    for ref in refs:
        # A chunk ends exactly after a record terminator: no record straddles two chunks.
        assert data[ref.end - 1 : ref.end] == b"\x1d"
        records = list(iter_chunk(ref))
        assert len(records) == ref.record_count
        assert [r.ordinal for r in records] == list(
            range(ref.first_record, ref.first_record + ref.record_count)
        )
        for rec in records:
            assert ref.start <= rec.offset < rec.offset + len(rec.data) <= ref.end
            assert rec.data == read_record_at(lf.path, rec.offset, len(rec.data))
            assert int(rec.data[:5]) == len(rec.data)
    joined = b"".join(rec.data for ref in refs for rec in iter_chunk(ref))
    assert joined == data


def test_marcxml_chunks_hold_whole_record_elements() -> None:
    lf = landing("test_data.utf8.marc.xml")
    data = Path(lf.path).read_bytes()
    refs = split_file(lf, records_per_chunk=8)
    assert_contiguous(refs)
    assert sum(r.record_count for r in refs) == 30
    records = [rec for ref in refs for rec in iter_chunk(ref)]
    assert len(records) == 30
    for rec in records:
        assert rec.data.startswith(b"<record") and rec.data.endswith(b"</record>")
        assert data[rec.offset : rec.offset + len(rec.data)] == rec.data
    # The record area runs from the first record's start tag to the last record's end tag.
    assert refs[0].start == data.index(b"<record")
    assert refs[-1].end == data.rindex(b"</record>") + len(b"</record>")


def test_a_wrapper_record_around_bib_and_holdings_yields_the_two_marc_records() -> None:
    refs = split_file(landing("chalmers_bib_holdings_pair.xml"), records_per_chunk=1)
    records = [rec for ref in refs for rec in iter_chunk(ref)]
    assert len(refs) == 2
    assert [b'type="Bibliographic"' in r.data for r in records] == [True, False]
    assert b'type="Holdings"' in records[1].data


def test_a_one_record_file_is_one_chunk() -> None:
    lf = landing("one.dat")
    refs = split_file(lf, records_per_chunk=2000)
    assert len(refs) == 1
    assert (refs[0].start, refs[0].end, refs[0].record_count) == (0, lf.size, 1)
    assert refs[0].label == "one.dat records 1\u20131"


def test_chunk_size_grows_when_the_file_would_need_too_many_chunks() -> None:
    refs = split_file(landing("test_data.utf8.mrc"), records_per_chunk=1, max_chunks=4)
    assert len(refs) == 4
    assert [r.record_count for r in refs] == [8, 8, 8, 6]


def test_trailing_garbage_after_the_last_terminator_belongs_to_the_last_chunk() -> None:
    lf = landing("bad_records.mrc")
    data = Path(lf.path).read_bytes()
    refs = split_file(lf, records_per_chunk=3)
    assert refs[-1].end == len(data)
    last = list(iter_chunk(refs[-1]))[-1]
    assert last.data == data[data.rindex(b"\x1d") + 1 :]
    assert sum(r.record_count for r in refs) == data.count(b"\x1d") + 1


def test_a_truncated_marcxml_file_keeps_its_unclosed_record_as_a_span() -> None:
    lf = landing("invalidUChicago_SampleBibs.xml")
    refs = split_file(lf, records_per_chunk=10)
    [record] = list(iter_chunk(refs[0]))
    assert refs[0].end == lf.size
    assert record.data.startswith(b"<marc:record>")


def test_an_empty_file_raises_empty_file_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "vendor_2026-11-28.mrc"
    empty.write_bytes(b"")
    lf = LandingFile(
        vendor="demo", name=empty.name, path=str(empty), sha256="0" * 64, size=0, format="iso2709"
    )
    with pytest.raises(EmptyFileError) as info:
        split_file(lf, records_per_chunk=10)
    assert info.value.reason == "empty_file"
    assert "vendor_2026-11-28.mrc" in str(info.value)


def test_the_reader_reads_only_its_own_byte_range(tmp_path: Path) -> None:
    # Bytes outside the chunk are overwritten after splitting: the chunk must still read whole.
    copy = tmp_path / "copy.mrc"
    shutil.copyfile(FIXTURES / "test.dat", copy)
    refs = split_file(describe_landing(copy, "demo"), records_per_chunk=3)
    middle = refs[1]
    data = bytearray(copy.read_bytes())
    data[: middle.start] = b"X" * middle.start
    data[middle.end :] = b"Y" * (len(data) - middle.end)
    copy.write_bytes(bytes(data))
    records = list(iter_chunk(middle))
    assert len(records) == 3
    assert all(b"X" not in r.data and b"Y" not in r.data[-1:] for r in records)


def _peak_bytes_to_split_and_read(path: Path) -> tuple[int, int]:
    """(records read, peak traced allocation) for splitting and reading every chunk of `path`."""
    landing = describe_landing(path, "demo")
    tracemalloc.start()
    try:
        count = sum(
            1 for ref in split_file(landing, records_per_chunk=500) for _ in iter_chunk(ref)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def test_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    record_bytes = (FIXTURES / "test_data.utf8.mrc").read_bytes()
    peaks = {}
    for copies in (100, 400):  # ~4 MB and ~16 MB: both well past the 1 MiB read block
        path = tmp_path / f"x{copies}.mrc"
        with path.open("wb") as out:
            for _ in range(copies):
                out.write(record_bytes)
        count, peaks[copies] = _peak_bytes_to_split_and_read(path)
        assert count == 30 * copies
        path.unlink()
    # Four times the data, the same peak: it is set by the read block, not by the file.
    assert peaks[400] < peaks[100] * 1.25
    assert peaks[400] < 3 * (1 << 20)


def test_newlines_between_records_and_a_leading_bom_are_padding_not_records(tmp_path: Path) -> None:
    original = (FIXTURES / "test.dat").read_bytes()
    padded = tmp_path / "padded.mrc"
    padded.write_bytes(b"\xef\xbb\xbf" + original.replace(b"\x1d", b"\x1d\r\n"))
    refs = split_file(describe_landing(padded, "demo"), records_per_chunk=4)
    records = [rec for ref in refs for rec in iter_chunk(ref)]
    assert len(records) == 10
    assert b"".join(r.data for r in records) == original
    assert all(r.data[:5].isdigit() for r in records)
