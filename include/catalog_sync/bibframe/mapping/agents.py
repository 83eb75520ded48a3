"""Agents: 1XX main entry and 7XX added entries from the Work's and Instance's contributions."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping.context import MappingContext, authority_links, marc_key
from catalog_sync.bibframe.rdfxml import Element, classes, code, label, nodes


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
