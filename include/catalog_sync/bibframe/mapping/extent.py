"""Extent and notes: 300 physical description, 5XX notes, 856 electronic locations."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.mapping.context import MappingContext, is_physical, notes_of
from catalog_sync.bibframe.rdfxml import label, nodes, preferred_literals


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
    dimensions = preferred_literals(ctx.inst, "dimensions")
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
