"""Provision: 250 edition and 264 production, publication, distribution, manufacture."""

from __future__ import annotations

from dataclasses import dataclass

from pymarc import Subfield

from catalog_sync.bibframe.mapping.context import MappingContext
from catalog_sync.bibframe.rdfxml import (
    BFLC,
    Element,
    classes,
    code,
    is_non_latin,
    label,
    nodes,
    preferred_literals,
    props,
)

_PROVISION_IND2 = {"Production": "0", "Publication": "1", "Distribution": "2", "Manufacture": "3"}


def edition(ctx: MappingContext) -> None:
    for value in preferred_literals(ctx.inst, "editionStatement"):
        # LoC's converter joins 250 $a and $b with ISBD's " / "; the first one splits them.
        edition_, sep, responsibility = value.partition(" / ")
        ctx.add(
            "250", " ", " ", [Subfield("a", edition_), Subfield("b", responsibility if sep else "")]
        )


def provision_activities(ctx: MappingContext) -> list[Element]:
    found = [n.element for n in nodes(ctx.inst, "provisionActivity") if n.element is not None]
    # 008 dates come from the publication first, as in the MARC 21 definition of 008/07.
    return sorted(found, key=lambda e: 0 if "Publication" in classes(e) else 1)


def provision(ctx: MappingContext) -> None:
    statements = [
        (pa, _statement(pa))
        for pa in (n.element for n in nodes(ctx.inst, "provisionActivity"))
        if pa is not None
    ]
    romanised = any(not _alternate_script(subs) for _, (subs, _) in statements)
    dated = [pa for pa in provision_activities(ctx) if preferred_literals(pa, "date")]
    runs: list[_Run] = []
    seen: set[tuple[str, tuple[Subfield, ...]]] = set()
    for pa, (subs, dates_left_out) in statements:
        ind2 = next((v for k, v in _PROVISION_IND2.items() if k in classes(pa)), "1")
        if romanised and _alternate_script(subs):
            # The 880 parallel of a romanised statement: left out (and counted), not a 264.
            ctx.unmapped["instance.provisionActivity.alternateScript"] += 1
            continue
        if _coded_only(pa):
            # Only a normalised date and a country code: LoC's converter makes this from 008,
            # where it goes back (the first dated one); it transcribes no 260/264.
            if not dated or pa is not dated[0]:
                ctx.unmapped["instance.provisionActivity.codedOnly"] += 1
            continue
        # LoC's converter describes one publication twice (from 260/264 and from 008, the
        # latter carrying the former's transcribed values): one 264 says it once.
        if (ind2, tuple(subs)) in seen:
            continue
        seen.add((ind2, tuple(subs)))
        if dates_left_out:
            # A 260 may repeat $c, 264 may not: the first date stays, the rest are counted.
            ctx.unmapped["instance.provisionActivity.simpleDate.repeated"] += dates_left_out
        status = ",".join(sorted(code(n) or "" for n in nodes(pa, "status")))
        last = runs[-1] if runs else None
        if last and last.ind2 == ind2 and last.status == status and not last.dated:
            # One 260/264 naming several places and publishers reaches BIBFRAME as several
            # activities, only the last one dated: written back as the one statement it was.
            last.subfields += subs
        else:
            runs.append(_Run(ind2, status, list(subs)))
    produced = False
    for run in runs:
        produced |= ctx.add("264", " ", run.ind2, run.subfields)
    for value in preferred_literals(ctx.inst, "copyrightDate"):
        ctx.add("264", " ", "4", [Subfield("c", value)])
    if not produced:
        for name in ("publicationStatement", "provisionActivityStatement"):
            if props(ctx.inst, name):
                ctx.unmapped[f"instance.{name}"] += 1


@dataclass
class _Run:
    """Consecutive provision activities of one kind and status that make one 264."""

    ind2: str
    status: str
    subfields: list[Subfield]

    @property
    def dated(self) -> bool:
        return any(s.code == "c" for s in self.subfields)


def _coded_only(pa: Element) -> bool:
    """No transcribed value and no labelled place or agent: nothing a 264 could transcribe."""
    if any(props(pa, name, BFLC) for name in ("simplePlace", "simpleAgent", "simpleDate")):
        return False
    labelled = [
        n
        for name in ("place", "agent")
        for n in nodes(pa, name)
        if n.element is not None and label(n.element)
    ]
    return not labelled


def _alternate_script(subs: list[Subfield]) -> bool:
    return any(is_non_latin(s.value) for s in subs if s.code in ("a", "b"))


def _statement(pa: Element) -> tuple[list[Subfield], int]:
    """264 $a $b $c of one provision activity, and how many more dates 264 $c cannot hold."""
    simple_places = preferred_literals(pa, "simplePlace", BFLC)
    simple_agents = preferred_literals(pa, "simpleAgent", BFLC)
    simple_dates = preferred_literals(pa, "simpleDate", BFLC)
    places = simple_places or [
        label(p.element) or ""
        for p in nodes(pa, "place")
        if p.element is not None and "/countries/" not in (p.uri or "")
    ]
    agents = simple_agents or [
        label(a.element) or "" for a in nodes(pa, "agent") if a.element is not None
    ]
    # A transcribed statement without a date has none: its bf:date is the coded 008 date,
    # which 008/07-14 carries already and which the source's 260/264 did not state.
    transcribed = bool(simple_places or simple_agents or simple_dates)
    dates = simple_dates or (
        [] if transcribed else [_edtf_display(d) for d in preferred_literals(pa, "date")]
    )
    subs = [Subfield("a", p) for p in places if p] + [Subfield("b", a) for a in agents if a]
    return subs + [Subfield("c", d) for d in dates[:1]], len(dates[1:])


def _edtf_display(edtf: str) -> str:
    """An EDTF interval as a reader writes it: `2009/..` -> `2009-`, `1861/1863` -> `1861-1863`."""
    start, sep, end = edtf.partition("/")
    if not sep:
        return edtf
    return f"{start}-{'' if end in ('', '..') else end}"
