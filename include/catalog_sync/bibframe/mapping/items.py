"""Items: 852 location and 876 item information, one linked pair per bf:Item."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.mapping.context import MappingContext, local_id, notes_of, org_code
from catalog_sync.bibframe.rdfxml import RDF, Element, classes, label, literal, nodes

_SHELFMARK_IND1 = {
    "ShelfMarkLcc": "0", "ShelfMarkDdc": "1", "ShelfMarkNlm": "2", "ShelfMarkUdc": "8",
}  # fmt: skip


def items(ctx: MappingContext) -> None:
    for seq, item in enumerate(ctx.desc.items, start=1):
        link = Subfield("8", str(seq))
        shelf = [m.element for m in nodes(item, "shelfMark") if m.element is not None]
        ind1 = next(
            (v for k, v in _SHELFMARK_IND1.items() for s in shelf if k in classes(s)),
            "8" if shelf else " ",
        )
        held = [org_code(h) or "" for h in nodes(item, "heldBy")]
        subs = [link, *[Subfield("a", h) for h in held[:1]]]
        subs += [
            Subfield("b", label(s.element) or "")
            for s in nodes(item, "sublocation")
            if s.element is not None
        ]
        subs += [Subfield("h", label(s) or "") for s in shelf[:1]]
        subs += [Subfield("z", label(n) or "") for n in notes_of(item)]
        ctx.add("852", ind1, " ", subs)
        item_id = _item_id(item)
        barcodes = [
            literal(i.element, "value", RDF) or ""
            for i in nodes(item, "identifiedBy")
            if i.element is not None and "Barcode" in classes(i.element)
        ]
        parts = [
            label(e.element) or ""
            for e in nodes(item, "enumerationAndChronology")
            if e.element is not None
        ]
        if item_id or barcodes:
            ctx.add(
                "876",
                " ",
                " ",
                [
                    link,
                    Subfield("a", item_id or ""),
                    *[Subfield("p", b) for b in barcodes],
                    *[Subfield("3", p) for p in parts],
                ],
            )


def _item_id(item: Element) -> str | None:
    for admin in [n.element for n in nodes(item, "adminMetadata") if n.element is not None]:
        local = local_id(admin)
        if local:
            return local[0]
    about = item.get(f"{{{RDF}}}about") or ""
    return about.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None
