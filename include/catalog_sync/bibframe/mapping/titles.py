"""Titles: 245 title statement, 210/222/246 other titles, 490/8XX series."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping.agents import is_series_relation
from catalog_sync.bibframe.mapping.context import MappingContext, authority_links, marc_key
from catalog_sync.bibframe.rdfxml import (
    BFLC,
    RDF,
    Element,
    Node,
    classes,
    code,
    label,
    literal,
    nodes,
    preferred_literals,
)


def _titles(owner: Element, wanted: str) -> list[Element]:
    out = []
    for n in nodes(owner, "title"):
        if n.element is None:
            continue
        cls = classes(n.element)
        if wanted in cls and (wanted != "Title" or len(cls - {"Title"}) == 0):
            out.append(n.element)
    return out


def title(ctx: MappingContext, has_main_entry: bool) -> None:
    titles = _titles(ctx.inst, "Title") or _titles(ctx.work, "Title")
    main = None
    for t in titles:
        main = t if preferred_literals(t, "mainTitle") or label(t) else None
        if main is not None:
            break
    if main is None:
        raise BibframeMappingError("no_title", ctx.desc.uri or "")
    nonsort = literal(main, "nonSortNum", BFLC) or "0"
    statement = " ; ".join(preferred_literals(ctx.inst, "responsibilityStatement"))
    subs = [*title_parts(main), Subfield("c", statement)]
    ctx.add(
        "245",
        "1" if has_main_entry else "0",
        nonsort[:1] if nonsort[:1].isdigit() else "0",
        subs,
    )
    for prefix, owner in (("work", ctx.work),):
        for n in nodes(owner, "title"):
            if n.element is not None and classes(n.element) != {"Title"}:
                ctx.unmapped[f"{prefix}.title.{'/'.join(sorted(classes(n.element)))}"] += 1


def title_parts(title: Element) -> list[Subfield]:
    main = preferred_literals(title, "mainTitle") or [label(title) or ""]
    subs = [Subfield("a", main[0])]
    # Every subtitle: a title proper in several parts (245 $b repeated) keeps them all.
    subs += [Subfield("b", v) for v in preferred_literals(title, "subtitle")]
    subs += [Subfield("n", v) for v in preferred_literals(title, "partNumber")]
    subs += [Subfield("p", v) for v in preferred_literals(title, "partName")]
    return subs


def variant_titles(ctx: MappingContext) -> None:
    for cls, tag, ind1, ind2 in (
        ("VariantTitle", "246", "3", " "),
        ("ParallelTitle", "246", "3", "1"),
        ("KeyTitle", "222", " ", "0"),
        ("AbbreviatedTitle", "210", "0", " "),
    ):
        for t in _titles(ctx.inst, cls):
            ctx.add(tag, ind1, ind2, title_parts(t))


def series(ctx: MappingContext) -> None:
    statements = preferred_literals(ctx.inst, "seriesStatement")
    numbering = preferred_literals(ctx.inst, "seriesEnumeration")
    transcribed: list[list[Subfield]] = [
        [Subfield("a", s), *[Subfield("v", v) for v in numbering[:1]]] for s in statements
    ]
    traced: list[list[Subfield]] = []
    series_nodes: list[tuple[Node, str | None]] = []
    for owner in (ctx.work, ctx.inst):
        for n in nodes(owner, "hasSeries"):
            series_nodes.append((n, None))
        for rel in nodes(owner, "relation"):
            if rel.element is None:
                continue
            if not is_series_relation(rel.element):
                continue  # name/title entries and links: agents.name_title_entries
            number = literal(rel.element, "seriesEnumeration")
            for res in nodes(rel.element, "associatedResource"):
                series_nodes.append((res, number))
    for n, number in series_nodes:
        el = n.element
        if el is None:
            raise BibframeMappingError("series_without_title", n.uri or "")
        key = marc_key(el)
        titles = [t for t in (nodes(el, "title")) if t.element is not None]
        name = (
            preferred_literals(titles[0].element, "mainTitle")
            if titles and titles[0].element is not None
            else []
        ) or [label(el) or ""]
        uncontrolled = "Uncontrolled" in classes(el) or any(
            code(s) == "t" for s in nodes(el, "status")
        )
        if uncontrolled or key is None:
            if not name[0]:
                raise BibframeMappingError("series_without_title", n.uri or "")
            issn = [
                literal(i.element, "value", RDF) or ""
                for i in nodes(el, "identifiedBy")
                if i.element is not None and "Issn" in classes(i.element)
            ]
            transcribed.append(
                [
                    Subfield("a", name[0]),
                    *[Subfield("x", i) for i in issn],
                    Subfield("v", number or ""),
                ]
            )
        else:
            subs = [s for s in key.subfields if s.code not in ("v", "0", "1")]
            traced.append([*subs, Subfield("v", number or ""), *authority_links(n.uri)])
            tag = "8" + key.tag[1:] if key.tag[1:] in ("00", "10", "11", "30") else "830"
            ind = (
                key.indicators
                if tag != "830"
                else (" ", key.indicators[0] if key.tag == "130" else key.indicators[1])
            )
            ctx.add(tag, ind[0], ind[1], traced[-1])
    for subs in transcribed:
        ctx.add("490", "1" if traced else "0", " ", subs)
