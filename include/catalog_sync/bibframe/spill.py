"""Top-level nodes waiting for their partners, kept in memory up to a few and on disk past it."""

from __future__ import annotations

import tempfile
from array import array
from bisect import bisect_left
from pathlib import Path
from types import TracebackType
from typing import IO

from lxml import etree  # type: ignore[import-untyped]

from catalog_sync.bibframe.rdfxml import Element

# Enough for any file written "Work, then its Instances" (or the reverse) to stay in memory;
# only files that separate Instances from their Works by more than this reach the disk.
KEEP_IN_MEMORY = 256


class HeldNodes:
    """Nodes by document position: the first `keep` in memory, the rest serialised to a
    temporary file and parsed again when asked for, so memory does not grow with the file
    whatever the order of its Works and Instances (the temporary file does, at most to the
    size of the nodes still waiting, and is removed on close). `folder` places that file (the
    conversion's own folder, so a run writes nothing outside its runtime folder).
    """

    def __init__(self, keep: int = KEEP_IN_MEMORY, folder: Path | None = None) -> None:
        self._keep = keep
        self._folder = folder
        self._memory: dict[int, Element] = {}
        # Spilled nodes by position, in three arrays rather than a dict of tuples (~130 bytes
        # a node): positions only grow, so a bisect finds one. A removed node keeps its row
        # with length -1 until half the rows are removed, then the rows are compacted.
        self._pos, self._off, self._len = array("q"), array("q"), array("q")
        self._live = 0
        self._file: IO[bytes] | None = None
        self._parser = etree.XMLParser(huge_tree=True, resolve_entities=False)

    def _row(self, pos: int) -> int:
        """The row of a spilled node still held, -1 if none."""
        i = bisect_left(self._pos, pos)
        if i < len(self._pos) and self._pos[i] == pos and self._len[i] >= 0:
            return i
        return -1

    def __contains__(self, pos: object) -> bool:
        return pos in self._memory or (isinstance(pos, int) and self._row(pos) >= 0)

    def __setitem__(self, pos: int, el: Element) -> None:
        if len(self._memory) < self._keep:
            self._memory[pos] = el
            return
        if self._pos and pos <= self._pos[-1]:
            raise ValueError(f"spilled positions must increase: {pos} after {self._pos[-1]}")
        if self._file is None:
            # Held open across calls and closed by close(): a with-block cannot span them.
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                prefix=".bibframe-held-", dir=self._folder
            )
        # A detached lxml element serialises with the namespace declarations it uses.
        data = etree.tostring(el)
        offset = self._file.seek(0, 2)
        self._file.write(data)
        self._pos.append(pos)
        self._off.append(offset)
        self._len.append(len(data))
        self._live += 1

    def __getitem__(self, pos: int) -> Element:
        if pos in self._memory:
            return self._memory[pos]
        i = self._row(pos)
        if i < 0:
            raise KeyError(pos)
        assert self._file is not None  # something was spilled, so the file exists
        self._file.seek(self._off[i])
        return etree.fromstring(self._file.read(self._len[i]), self._parser)

    def __delitem__(self, pos: int) -> None:
        if self._memory.pop(pos, None) is not None:
            return
        i = self._row(pos)
        if i < 0:
            raise KeyError(pos)
        self._len[i] = -1  # its bytes stay in the file until close: append-only
        self._live -= 1
        if self._live * 2 < len(self._pos):
            positions, off, length = array("q"), array("q"), array("q")
            for row in zip(self._pos, self._off, self._len, strict=True):
                if row[2] >= 0:
                    positions.append(row[0])
                    off.append(row[1])
                    length.append(row[2])
            self._pos, self._off, self._len = positions, off, length

    @property
    def spilled(self) -> int:
        """How many nodes are on disk now (for tests and the bench)."""
        return self._live

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory.clear()
        self._pos, self._off, self._len = array("q"), array("q"), array("q")
        self._live = 0

    def __enter__(self) -> HeldNodes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
