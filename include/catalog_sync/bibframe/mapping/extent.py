"""Extent and notes: 300 physical description, 5XX notes, 856 electronic locations."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.mapping.context import MappingContext, is_physical, notes_of
from catalog_sync.bibframe.rdfxml import label, nodes, preferred_literals

# The sizes LoC's converter (ConvSpec-001-007.xsl) spells out from a 007 when the record has
# no 300 $c. Only those ending in a period with no other full stop are listed: the converter
# (v2.10) strips that final period from every 300 $c it copies (tChopPunct), so there a 300 $c
# never takes one of these forms. Older versions kept the period (BFDB's v2.1.0 output has
# "4 3/4 in." from 300 $c beside the same from 007), so a phrase is only taken for the 007's
# on an Instance without bf:extent, i.e. made from a record with no 300 $a at all.
# ("9.5 mm.", "2x2 in. or 5x5 cm.", "unknown"... could also be a 300 $c kept as typed.)
_SIZES_FROM_007 = frozenset(
    {
        # computer files (007/04) and sound recordings (007/06)
        "3 in.", "5 in.", "7 in.", "8 in.", "10 in.", "12 in.", "16 in.", "3 1/2 in.",
        "4 3/4 in.", "5 1/4 in.", "1 1/8 x 2 3/8 in.", "3 7/8 x 2 1/2 in.",
        "5 1/4 x 3 7/8 in.", "2 3/4 x 4 in.",
        # microforms (007/04); projected graphics, motion pictures, videorecordings (007/07)
        "8 mm.", "16 mm.", "28 mm.", "35 mm.", "70 mm.", "105 mm.", "standard 8 mm.",
        "1/4 in.", "1/2 in.", "1 in.", "2 in.", "3/4 in.",
    }
)  # fmt: skip


def physical_description(ctx: MappingContext) -> None:
    extent_nodes = [n.element for n in nodes(ctx.inst, "extent") if n.element is not None]
    extents = [label(el) or "" for el in extent_nodes]
    # Other physical details (300 $b) sit in a physical note of the Instance, or, as LoC's
    # converter writes them, in a physical note of the bf:Extent itself.
    details = [
        label(el) or ""
        for owner in (ctx.inst, *extent_nodes)
        for el in notes_of(owner)
        if is_physical(el)
    ]
    dimensions = []
    for value in preferred_literals(ctx.inst, "dimensions"):
        if not extent_nodes and " ".join(value.split()) in _SIZES_FROM_007:
            # Not a transcribed 300 $c: 007 is not carried (mapping doc), so count it.
            ctx.unmapped["instance.dimensions.007"] += 1
        else:
            dimensions.append(value)
    if extents or dimensions:
        subs = [Subfield("a", e) for e in extents] + [Subfield("b", d) for d in details]
        ctx.add("300", " ", " ", subs + [Subfield("c", d) for d in dimensions])


def notes(ctx: MappingContext) -> None:
    for owner in (ctx.inst, ctx.work):
        for el in notes_of(owner):
            if not is_physical(el):
                ctx.add("500", " ", " ", [Subfield("a", label(el) or "")])
    for owner, name, tag, ind1 in (
        (ctx.inst, "supplementaryContent", "504", " "),
        (ctx.work, "tableOfContents", "505", "0"),
        (ctx.inst, "tableOfContents", "505", "0"),
        (ctx.inst, "credits", "508", " "),
        (ctx.work, "summary", "520", " "),
        (ctx.inst, "summary", "520", " "),
    ):
        for n in nodes(owner, name):
            text = label(n.element) if n.element is not None else None
            ctx.add(tag, ind1, " ", [Subfield("a", text or "")])
        for value in preferred_literals(owner, name):
            ctx.add(tag, ind1, " ", [Subfield("a", value)])


def electronic_locators(ctx: MappingContext) -> None:
    for n in nodes(ctx.inst, "electronicLocator"):
        ctx.add("856", "4", "0", [Subfield("u", n.uri or label(n.element) or "")])
