"""Streaming read of one chunk's records: seek to the chunk, read it in blocks, never the file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from catalog_sync.marc.framing import iter_spans
from catalog_sync.models import ChunkRef


@dataclass(frozen=True)
class RawRecord:
    """One record's bytes exactly as delivered, with where it sits in the landing file.

    `length` is the record's full length in the file; `data` is shorter only for a runaway span
    (no terminator for megabytes), whose head alone is kept.
    """

    offset: int
    data: bytes
    ordinal: int
    length: int = -1

    @property
    def size(self) -> int:
        return self.length if self.length >= 0 else len(self.data)

    @property
    def clipped(self) -> bool:
        return self.size > len(self.data)


def iter_chunk(ref: ChunkRef) -> Iterator[RawRecord]:
    """The records of one chunk in file order, reading only [ref.start, ref.end)."""
    with Path(ref.file_path).open("rb") as fh:
        for n, span in enumerate(iter_spans(fh, ref.format, ref.start, ref.end)):
            yield RawRecord(span.offset, span.data, ref.first_record + n, span.length)


def read_record_at(path: str, offset: int, length: int) -> bytes:
    """The `length` bytes at `offset`: one record re-read at commit time."""
    with Path(path).open("rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    if len(data) != length:
        raise EOFError(
            f"{Path(path).name}: wanted {length} bytes at offset {offset}, got {len(data)}"
        )
    return data
