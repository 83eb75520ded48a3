"""Reject files: the rejected records as received, plus a JSON-lines index saying where and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TextIO

from catalog_sync.marc.prepare import Rejection
from catalog_sync.marc.reader import RawRecord

# A hook for the privacy stage: turns a record's bytes into their masked form before they rest
# on disk. Without one the records are kept exactly as the vendor sent them.
RecordMask = Callable[[bytes], bytes]


def index_path_for(rejects_path: Path) -> Path:
    """The index that goes with a reject file: `<name>.index.jsonl` beside it."""
    return rejects_path.with_name(rejects_path.name + ".index.jsonl")


class RejectWriter:
    """Append rejected records to `path` and one index line each to `path`.index.jsonl.

    Each index line holds chunk_id, ordinal, offset and length in the landing file, the offset
    in the reject file, control number, reason code and detail. Files are created on the first
    rejection; files left by an earlier attempt at the same chunk are removed on open, so a
    re-run never shows stale rejections. Usable as a context manager.
    """

    def __init__(
        self, path: Path | str, chunk_id: str = "", mask: RecordMask | None = None
    ) -> None:
        self.path = Path(path)
        self.index_path = index_path_for(self.path)
        self.chunk_id = chunk_id
        self.count = 0
        self._mask = mask
        self._records: BinaryIO | None = None
        self._index: TextIO | None = None
        self._written = 0
        self.path.unlink(missing_ok=True)
        self.index_path.unlink(missing_ok=True)

    def add(self, raw: RawRecord, rejection: Rejection, chunk_id: str | None = None) -> None:
        if self._records is None or self._index is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._records = self.path.open("wb")
            self._index = self.index_path.open("w", encoding="utf-8")
        data = self._mask(raw.data) if self._mask else raw.data
        entry = {
            "chunk_id": chunk_id if chunk_id is not None else self.chunk_id,
            "ordinal": raw.ordinal,
            "offset": raw.offset,
            "length": raw.size,
            "reject_offset": self._written,
            "reject_length": len(data),
            "control_number": rejection.control_number,
            "reason": rejection.reason,
            "detail": rejection.detail,
        }
        self._records.write(data)
        self._index.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._written += len(data)
        self.count += 1

    def close(self) -> None:
        for handle in (self._records, self._index):
            if handle is not None:
                handle.close()
        self._records = self._index = None

    def __enter__(self) -> RejectWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_index(rejects_path: Path | str) -> list[dict[str, object]]:
    """The index entries of a reject file (empty when nothing was rejected)."""
    index = index_path_for(Path(rejects_path))
    if not index.exists():
        return []
    with index.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
