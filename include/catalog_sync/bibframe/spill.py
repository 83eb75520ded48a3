"""Top-level nodes waiting for their partners, kept in memory up to a few and on disk past it."""

from __future__ import annotations

import tempfile
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
        self._spilled: dict[int, tuple[int, int]] = {}  # position -> (offset, length)
        self._file: IO[bytes] | None = None
        self._parser = etree.XMLParser(huge_tree=True, resolve_entities=False)

    def __contains__(self, pos: object) -> bool:
        return pos in self._memory or pos in self._spilled

    def __setitem__(self, pos: int, el: Element) -> None:
        if len(self._memory) < self._keep:
            self._memory[pos] = el
            return
        if self._file is None:
            # Held open across calls and closed by close(): a with-block cannot span them.
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                prefix=".bibframe-held-", dir=self._folder
            )
        # A detached lxml element serialises with the namespace declarations it uses.
        data = etree.tostring(el)
        offset = self._file.seek(0, 2)
        self._file.write(data)
        self._spilled[pos] = (offset, len(data))

    def __getitem__(self, pos: int) -> Element:
        if pos in self._memory:
            return self._memory[pos]
        offset, length = self._spilled[pos]
        assert self._file is not None  # something was spilled, so the file exists
        self._file.seek(offset)
        return etree.fromstring(self._file.read(length), self._parser)

    def __delitem__(self, pos: int) -> None:
        if self._memory.pop(pos, None) is None:
            del self._spilled[pos]  # its bytes stay in the file until close: append-only

    @property
    def spilled(self) -> int:
        """How many nodes are on disk now (for tests and the bench)."""
        return len(self._spilled)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory.clear()
        self._spilled.clear()

    def __enter__(self) -> HeldNodes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
