"""The ILS client contract the pipeline codes against; one adapter per ILS flavour implements it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


@dataclass(frozen=True)
class Candidate:
    """An ILS record a standard-number search found, with the numbers it matched by index."""

    biblio_id: str
    numbers: Mapping[str, frozenset[str]]


@runtime_checkable
class ILSClient(Protocol):
    """Bibliographic record calls; each is safe to run concurrently with any other.

    Every call takes the record's correlation id, which travels as `X-Request-ID` and is bound
    to the call's log events. Errors are `catalog_sync.ils.errors.ILSError` subclasses.
    """

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        """Create the record; returns the ILS biblio id.

        A stamped record (catalog_sync.changes.stamp) whose answer is lost is found again by its stamp,
        not re-created; an unstamped one is then not resent (ILSUnavailable).
        """
        ...

    async def update_biblio(self, biblio_id: str, marcxml: bytes, *, correlation_id: str) -> None:
        """Replace the record; ILSNotFound when the ILS has no such biblio."""
        ...

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        """The record as MARCXML, None when the ILS has no such biblio."""
        ...

    async def delete_biblio(self, biblio_id: str, *, correlation_id: str) -> None:
        """Delete the record; ILSConflict while items are attached, ILSNotFound if absent."""
        ...

    async def find_by_numbers(
        self, numbers: Mapping[str, Sequence[str]], *, correlation_id: str
    ) -> list[Candidate]:
        """ILS records holding any of `numbers` (index -> normalised values: isbn as ISBN-13
        digits, issn as NNNN-NNNC, lccn as catalog_sync.changes.identifiers.lccn), lowest id first.

        One search for all of them; each hit is verified against the ILS's own values.
        """
        ...

    async def find_created(
        self,
        stamps: Collection[str],
        *,
        title: str | None,
        source: str | None,
        since: datetime,
        correlation_id: str,
    ) -> dict[str, str]:
        """Records saved since `since` whose 245 $a starts like `title` (None: any), whose 003
        is `source` and that carry one of `stamps` (catalog_sync.changes.stamp), id -> stamp: the
        creates whose answer was lost."""
        ...

    async def check_access(self, *, correlation_id: str) -> str:
        """One cheap authenticated read; returns a line for operators (used by test_connection)."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
