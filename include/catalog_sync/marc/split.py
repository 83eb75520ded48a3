"""Deterministic chunking of a landing file into byte ranges that never cut a record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from catalog_sync.marc.errors import EmptyFileError
from catalog_sync.marc.framing import iter_spans
from catalog_sync.models import ChunkRef, LandingFile, chunk_id_for


def _span_ends(landing: LandingFile) -> Iterator[tuple[int, int]]:
    """(start, end) of every record span in the file, streamed."""
    path = Path(landing.path)
    with path.open("rb") as fh:
        size = path.stat().st_size
        for span in iter_spans(fh, landing.format, 0, size):
            yield span.offset, span.offset + span.length


def split_file(
    landing: LandingFile, records_per_chunk: int, max_chunks: int = 1024
) -> list[ChunkRef]:
    """Chunk refs covering every record of the file once, in file order.

    Two streaming passes (count, then cut) keep memory flat whatever the file size. When
    records_per_chunk would give more than max_chunks chunks (Airflow's default
    max_map_length is 1024), the chunk size grows until the list fits. Chunks are contiguous:
    each starts where the previous one ended, so bytes between records (MARCXML whitespace,
    newlines after ISO 2709 terminators) are covered too; the first chunk starts at the first
    record and the last ends after the last span. Trailing bytes after the last record
    terminator that are not padding are a span of their own, so they land in the last chunk and
    the reader rejects them as a record with a reason.
    """
    if records_per_chunk < 1 or max_chunks < 1:
        raise ValueError("records_per_chunk and max_chunks must be at least 1")
    if Path(landing.path).stat().st_size == 0:
        raise EmptyFileError(f"vendor file {landing.name} is empty (0 bytes)")
    total = sum(1 for _ in _span_ends(landing))
    if total == 0:
        return []
    per_chunk = max(records_per_chunk, -(-total // max_chunks))
    refs: list[ChunkRef] = []
    chunk_start = -1
    first_record = 0
    count = 0
    last_end = 0
    for start, end in _span_ends(landing):
        if chunk_start < 0:
            chunk_start = start
        count += 1
        last_end = end
        if count == per_chunk:
            refs.append(_ref(landing, chunk_start, end, first_record, count))
            chunk_start, first_record, count = end, first_record + count, 0
    if count:
        refs.append(_ref(landing, chunk_start, last_end, first_record, count))
    return refs


def _ref(landing: LandingFile, start: int, end: int, first_record: int, count: int) -> ChunkRef:
    return ChunkRef(
        chunk_id=chunk_id_for(landing.sha256, start, end),
        vendor=landing.vendor,
        file_name=landing.name,
        file_path=landing.path,
        file_sha256=landing.sha256,
        format=landing.format,
        start=start,
        end=end,
        first_record=first_record,
        record_count=count,
        content_sha256=landing.content_sha256,
    )
