"""A record's item fields as ILS items: split from the bib, checked, then created or updated.

Koha's biblio API saves the record only (items never come from its 952), so the item fields
(Koha's 952, or the vendor's mapped tag: config.ItemMapping) leave the bib payload and each
becomes one POST /biblios/{id}/items, or a PUT of the item already there. The barcode is the
key, which makes the writes exactly-once without a ledger entry of their own: before any
write the biblio's items are listed, and an item whose barcode is there already is updated
(if it differs), never created again, whether the earlier try that created it died before
its acknowledgement or not. Items the ILS holds that the file does not name are left alone:
they are the library's. Prices travel only in the item payload: the record that is staged,
logged and reported is the masked one (the PII policy covers every mapped price subfield).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from pymarc import Record

from catalog_sync.config import ItemMapping
from catalog_sync.ils.client import IlsItem, ItemsClient
from catalog_sync.ils.errors import ILSConflict
from catalog_sync.ils.koha_items import DUPLICATE_BARCODE
from catalog_sync.ils.requestcount import request_kind
from catalog_sync.leases import current_lease, holdings_scope
from catalog_sync.marc.shallow import sharing_fields
from catalog_sync.models import RequestKind
from catalog_sync.pipeline.outcomes import RecordProblem

# Koha's own item tag: a Koha read may embed the biblio's items as 952, never bib content.
KOHA_ITEM_TAG = "952"
_PRICE = re.compile(r"^\D{0,4}?(\d{1,9}(?:[.,]\d{1,4})?)\s*[A-Za-z]{0,3}$")
_PRICES = ("purchase_price", "replacement_price")


class ItemProblem(RecordProblem):
    """A record's items cannot be written as they are; the record fails, nothing is written.

    The message never carries a price or a barcode (they are masked outside the ILS payload).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


ItemProperties = dict[str, object]


def split_items(record: Record, mapping: ItemMapping) -> tuple[Record, list[ItemProperties]]:
    """The record without its item fields, and each item field as Koha item properties."""
    wanted: list[ItemProperties] = []
    seen: set[str] = set()
    for position, item_field in enumerate(record.get_fields(mapping.tag), start=1):
        props: ItemProperties = {}
        for prop, code in mapping.subfield_map().items():
            values = [v.strip() for v in item_field.get_subfields(code) if v.strip()]
            if values:
                props[prop] = _price(values[0], position) if prop in _PRICES else values[0]
        for prop, value in mapping.defaults().items():
            props.setdefault(prop, value)
        barcode = props.get("external_id")
        if not barcode:
            raise ItemProblem(
                f"item {position} ({mapping.tag}) has no barcode ${mapping.barcode}: "
                "it has no key to be written exactly once",
                "item_no_barcode",
            )
        if not props.get("home_library_id"):
            raise ItemProblem(
                f"item {position} ({mapping.tag}) has no home library", "item_no_library"
            )
        if str(barcode) in seen:
            raise ItemProblem(
                f"item {position} ({mapping.tag}) repeats another item's barcode",
                "item_duplicate_barcode",
            )
        seen.add(str(barcode))
        wanted.append(props)
    bib = sharing_fields(record)  # `record` untouched; its item fields leave the copy only
    bib.remove_fields(mapping.tag)
    return bib, wanted


def _price(value: str, position: int) -> float:
    found = _PRICE.match(value)
    if found is None:
        # The value itself is never in the message: a price is masked outside the ILS.
        raise ItemProblem(f"item {position} has a price that is not a number", "item_bad_price")
    return float(found.group(1).replace(",", "."))


@dataclass
class ItemPlan:
    """What to write for a record's items, decided by reads only (before any write)."""

    create: list[ItemProperties] = field(default_factory=list)
    update: list[tuple[IlsItem, ItemProperties]] = field(default_factory=list)
    unchanged: int = 0


def items_client(client: object, wanted: list[ItemProperties]) -> ItemsClient | None:
    if not wanted:
        return None
    if not isinstance(client, ItemsClient):
        raise ItemProblem("this ILS adapter cannot write items", "ils_no_items")
    return client


async def plan_items(
    client: object, biblio_id: str | None, wanted: list[ItemProperties], *, correlation_id: str
) -> ItemPlan:
    """Sort the record's items into creates, updates and unchanged; ItemProblem when a barcode
    belongs to another biblio (`item_barcode_elsewhere`). `biblio_id` None: a biblio still to
    be created, which has no items yet."""
    plan = ItemPlan()
    items = items_client(client, wanted)
    if items is None:
        return plan
    with request_kind(RequestKind.ITEM):
        return await _plan(items, biblio_id, wanted, plan, correlation_id)


async def _plan(
    items: ItemsClient,
    biblio_id: str | None,
    wanted: list[ItemProperties],
    plan: ItemPlan,
    correlation_id: str,
) -> ItemPlan:
    held: dict[str, IlsItem] = {}
    if biblio_id is not None:
        for item in await items.list_items(biblio_id, correlation_id=correlation_id):
            if item.barcode is not None:
                held[item.barcode] = item
    for props in wanted:
        barcode = str(props["external_id"])
        mine = held.get(barcode)
        if mine is None:
            elsewhere = await items.find_item(barcode, correlation_id=correlation_id)
            if elsewhere is not None:
                raise _elsewhere(props)
            plan.create.append(props)
        elif _differs(mine, props):
            plan.update.append((mine, props))
        else:
            plan.unchanged += 1
    return plan


async def apply_items(
    client: object, ils: str, biblio_id: str, plan: ItemPlan, *, correlation_id: str
) -> Counter[str]:
    """Write the plan under the biblio's holdings lease; returns items created / updated."""
    if not plan.create and not plan.update:
        return Counter()
    assert isinstance(client, ItemsClient), "plan_items checked the client"
    with request_kind(RequestKind.ITEM):
        return await _apply_plan(client, ils, biblio_id, plan, correlation_id)


async def _apply_plan(
    client: ItemsClient, ils: str, biblio_id: str, plan: ItemPlan, correlation_id: str
) -> Counter[str]:
    done: Counter[str] = Counter()
    lease = current_lease()
    if lease is not None:
        await lease.extend([holdings_scope(ils, biblio_id)])
    for item, props in plan.update:
        await client.update_item(biblio_id, item.item_id, props, correlation_id=correlation_id)
        done["updated"] += 1
    for props in plan.create:
        try:
            await client.add_item(biblio_id, props, correlation_id=correlation_id)
            done["created"] += 1
        except ILSConflict as exc:
            if exc.reason != DUPLICATE_BARCODE:
                raise
            # Taken since the plan was made: ours only if it hangs off this biblio.
            found = await client.find_item(str(props["external_id"]), correlation_id=correlation_id)
            if found is None or found.biblio_id != str(biblio_id):
                raise _elsewhere(props) from exc
            if _differs(found, props):
                await client.update_item(
                    biblio_id, found.item_id, props, correlation_id=correlation_id
                )
                done["updated"] += 1
    return done


def _differs(item: IlsItem, props: ItemProperties) -> bool:
    for name, value in props.items():
        held = item.properties.get(name)
        if name in _PRICES:
            if not isinstance(held, int | float) or abs(float(held) - float(str(value))) > 1e-9:
                return True
        elif held != value:
            return True
    return False


def _elsewhere(props: ItemProperties) -> ItemProblem:
    del props  # the barcode stays out of the message: it may be scrubbed as PII elsewhere
    return ItemProblem(
        "an item's barcode is already an item of another biblio", "item_barcode_elsewhere"
    )
