"""Agents: 1XX main entry and 7XX added entries from the Work's and Instance's contributions."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping.context import MappingContext, authority_links, marc_key
from catalog_sync.bibframe.marckey import MarcKey
from catalog_sync.bibframe.rdfxml import (
    Element,
    Node,
    classes,
    code,
    label,
    nodes,
    preferred_literals,
    uri_tail,
)

# 7XX name/title and title added entries: the tags a related Hub's marcKey may carry.
_ADDED_ENTRY_TAGS = ("700", "710", "711", "730")


def contributions(ctx: MappingContext) -> bool:
    """Write 1XX/7XX; True when a main entry (1XX) was written."""
    has_main = False
    for owner, prefix in ((ctx.work, "work"), (ctx.inst, "instance")):
        for n in nodes(owner, "contribution"):
            if n.element is None:
                raise BibframeMappingError("contributor_without_name", n.uri or prefix)
            primary = bool({"PrimaryContribution"} & classes(n.element)) and prefix == "work"
            has_main |= _contribution(ctx, n.element, primary and not has_main)
    return has_main


def _contribution(ctx: MappingContext, contrib: Element, as_main: bool) -> bool:
    agents = nodes(contrib, "agent")
    if not agents or agents[0].element is None:
        detail = agents[0].uri if agents else "contribution without agent"
        raise BibframeMappingError("contributor_without_name", detail or "")
    agent = agents[0].element
    key = marc_key(agent)
    if key is not None and key.tag == "880":
        # Only an alternate-script (880) form: an unlinked 880 in the source, never a 1XX/7XX.
        ctx.unmapped["work.contribution.alternateScript"] += 1
        return False
    agent_classes = classes(agent)
    if key is not None and key.tag[1:] in ("00", "10", "11", "30"):
        family, ind1, subs = key.tag[1:], key.indicators[0], list(key.subfields)
    else:
        name = label(agent)
        if not name:
            raise BibframeMappingError("contributor_without_name", agents[0].uri or "")
        family, ind1 = _name_family(agent_classes)
        subs = [Subfield("a", name)]
    term_code = "j" if family == "11" else "e"
    terms, relators = [], []
    for role in nodes(contrib, "role"):
        term = label(role.element)
        if term:
            terms.append(Subfield(term_code, term))
        relator = code(role)
        if relator and role.uri and "/relators/" in role.uri:
            relators.append(Subfield("4", relator))
    # The bf:role nodes are authoritative; a marcKey's own $e/$4 is kept only without them.
    dropped = {"0", "1"} | ({"e", "j"} if terms else set()) | ({"4"} if relators else set())
    subs = [s for s in subs if s.code not in dropped]
    subs += terms + relators + authority_links(agents[0].uri)
    if family == "":
        ctx.add("720", " ", " ", subs)
        return False
    ctx.add(("1" if as_main else "7") + family, ind1, " ", subs)
    return as_main


def _name_family(agent_classes: set[str]) -> tuple[str, str]:
    """(tag family, first indicator) for an agent known only by its class."""
    if agent_classes & {"Family"}:
        return "00", "3"
    if agent_classes & {"Person"}:
        return "00", "1"
    if agent_classes & {"Jurisdiction"}:
        return "10", "1"
    if agent_classes & {"Organization"}:
        return "10", "2"
    if agent_classes & {"Meeting"}:
        return "11", "2"
    return "", " "


def is_series_relation(rel: Element) -> bool:
    kinds = [uri_tail(r.uri) or label(r.element) for r in nodes(rel, "relationship")]
    return any(k and "eries" in k for k in kinds)


def name_title_entries(ctx: MappingContext) -> None:
    """700/710/711 `$t` and 730 added entries from the Work's relations to other Works/Hubs.

    LoC's converter turns each name/title added entry into a bf:relation whose associated
    Hub carries the entry as its bflc:marcKey (tag, indicators, subfields). A relation that
    is neither a series nor such an entry (links 76X-78X, 740) is counted, not written.
    """
    for owner in (ctx.work, ctx.inst):
        for rel in nodes(owner, "relation"):
            if rel.element is None or is_series_relation(rel.element):
                continue
            written = False
            for res in nodes(rel.element, "associatedResource"):
                written |= _added_entry(ctx, res)
            if not written:
                ctx.unmapped["work.relation"] += 1


def _added_entry(ctx: MappingContext, res: Node) -> bool:
    if res.element is None:
        return False
    key = marc_key(res.element)
    if key is None or key.tag not in _ADDED_ENTRY_TAGS:
        key = _key_from_parts(res.element) if "Hub" in classes(res.element) else None
    if key is None:
        return False
    subs = [s for s in key.subfields if s.code not in ("0", "1")]
    links = authority_links(res.uri) or [s for s in key.subfields if s.code in ("0", "1")]
    return ctx.add(key.tag, key.indicators[0], key.indicators[1], [*subs, *links])


def _key_from_parts(hub: Element) -> MarcKey | None:
    """A Hub without a marcKey: its first contributor's name and its main title."""
    titles = [t.element for t in nodes(hub, "title") if t.element is not None]
    title = preferred_literals(titles[0], "mainTitle") if titles else []
    if not title:
        return None
    for n in nodes(hub, "contribution"):
        agents = nodes(n.element, "agent") if n.element is not None else []
        name = label(agents[0].element) if agents else None
        family, ind1 = (
            _name_family(classes(agents[0].element))
            if agents and agents[0].element is not None
            else ("", " ")
        )
        if name and family:
            return MarcKey(
                f"7{family}", (ind1, " "), (Subfield("a", name), Subfield("t", title[0]))
            )
    return MarcKey("730", ("0", " "), (Subfield("a", title[0]),))
