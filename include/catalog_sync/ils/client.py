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

        A stamped record (catalog_sync.changes.stamp) whose answer is lost is found again by its
        stamp, not re-created; an unstamped one is then not resent (ILSUnavailable).
        """
        ...

    async def update_biblio(self, biblio_id: str, marcxml: bytes, *, correlation_id: str) -> None:
        """Replace the record; ILSNotFound when the ILS has no such biblio."""
        ...

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        """The record as MARCXML, None when the ILS has no such biblio."""
        ...

    async def get_biblios(
        self, biblio_ids: Collection[str], *, correlation_id: str
    ) -> dict[str, bytes]:
        """Several records as get_biblio reads them, by biblio id, in as few requests as the ILS
        allows. An id is absent when the ILS has no such biblio or its record could not be told
        apart in the batch: read it with get_biblio, which says which. ILSBadAnswer when the
        batch's answer is unreadable as a whole."""
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
        creates whose answer was lost. Never writes. Where the ILS saves a record in several
        requests (FOLIO: instance, then MARC) a create may be found half-made: get_biblio gives
        None for it, and create_biblio of the same stamp then finishes it."""
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


@dataclass(frozen=True)
class IlsItem:
    """One item (copy) as the ILS holds it: its id, its biblio, and its properties by the
    ILS's own names (Koha: external_id is the barcode, home_library_id, purchase_price, ...)."""

    item_id: str
    biblio_id: str
    properties: Mapping[str, object]

    @property
    def barcode(self) -> str | None:
        value = self.properties.get("external_id")
        return None if value is None else str(value)


@runtime_checkable
class ItemsClient(Protocol):
    """Item calls, for an ILS adapter that holds items under its biblios (Koha).

    Separate from ILSClient so an adapter without items still satisfies ILSClient; the
    pipeline checks `isinstance(client, ItemsClient)` before it writes items. The barcode is
    an item's key: the ILS refuses a second item with the same one.
    """

    async def list_items(self, biblio_id: str, *, correlation_id: str) -> list[IlsItem]:
        """Every item of the biblio; ILSNotFound when the ILS has no such biblio."""
        ...

    async def find_item(self, barcode: str, *, correlation_id: str) -> IlsItem | None:
        """The item with this barcode, on whatever biblio; None when there is none."""
        ...

    async def add_item(
        self, biblio_id: str, properties: Mapping[str, object], *, correlation_id: str
    ) -> IlsItem:
        """Create an item. A lost answer is recovered by the barcode (the item found on this
        biblio is returned, never created twice); ILSConflict with reason `duplicate_barcode`
        when the barcode is already taken."""
        ...

    async def update_item(
        self,
        biblio_id: str,
        item_id: str,
        properties: Mapping[str, object],
        *,
        correlation_id: str,
    ) -> None:
        """Replace the item's properties; ILSNotFound when it is not an item of the biblio."""
        ...

    async def delete_item(self, item_id: str, *, correlation_id: str) -> None:
        """Delete the item; ILSConflict when the ILS refuses (on loan, on hold, ...)."""
        ...
