"""The ILS client contract the pipeline codes against; one adapter per ILS flavour implements it."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


@runtime_checkable
class ILSClient(Protocol):
    """Bibliographic record calls; each is safe to run concurrently with any other.

    Every call takes the record's correlation id, which travels as `X-Request-ID` and is bound
    to the call's log events. Errors are `catalog_sync.ils.errors.ILSError` subclasses.
    """

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        """Create the record; returns the ILS biblio id (found again, not re-created, on retry)."""
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

    async def find_biblio_ids(self, control_number: str, *, correlation_id: str) -> list[str]:
        """Ids of the biblios whose 001 is `control_number` (trimmed), lowest first."""
        ...

    async def find_biblio_ids_by(
        self, query: Mapping[str, str], *, correlation_id: str
    ) -> list[str]:
        """Ids of the biblios matching every `query` entry, lowest first.

        Keys: control_number, control_number_source, and the normalised standard numbers
        oclc_number, isbn13 (ISBN-13 digits) and issn (NNNN-NNNC), as catalog_sync.identifiers
        writes them.
        """
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
