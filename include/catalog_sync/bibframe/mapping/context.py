"""What every area of the mapping shares: the Instance being mapped and the fields so far."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from pymarc import Field, Indicators, Subfield

from catalog_sync.bibframe.marckey import MarcKey, parse_marc_key
from catalog_sync.bibframe.rdfxml import (
    BFLC,
    RDF,
    XML_LANG,
    Element,
    Node,
    classes,
    code,
    is_non_latin,
    label,
    literal,
    local_name,
    namespace,
    nodes,
    preferred_literals,
    uri_tail,
)
from catalog_sync.bibframe.stream import InstanceDescription


@dataclass
class MappingContext:
    """One Instance with its Work and Items, and the data fields written for it so far."""

    desc: InstanceDescription
    inst: Element
    work: Element
    unmapped: Counter[str]
    fields: list[Field] = field(default_factory=list)

    def add(self, tag: str, ind1: str, ind2: str, subfields: Iterable[Subfield]) -> bool:
        """Append a data field unless every subfield is empty; True when it was written."""
        subs = [s for s in subfields if s.value]
        if not subs:
            return False
        self.fields.append(Field(tag=tag, indicators=Indicators(ind1, ind2), subfields=subs))
        return True

    def admin(self) -> list[Element]:
        """AdminMetadata of the Instance, else of the Work (BIBFRAME puts it on either)."""
        for owner in (self.inst, self.work):
            found = [n.element for n in nodes(owner, "adminMetadata") if n.element is not None]
            if found:
                return found
        return []

    def statuses(self) -> list[tuple[str, Element]]:
        out = []
        for admin in self.admin():
            for n in nodes(admin, "status"):
                out.append((code(n) or "", admin))
        return out


def notes_of(owner: Element) -> list[Element]:
    return [n.element for n in nodes(owner, "note") if n.element is not None]


def local_id(admin: Element) -> tuple[str, str | None] | None:
    """An AdminMetadata's bf:Local identifier and its assigner's code."""
    for n in nodes(admin, "identifiedBy"):
        if n.element is None or "Local" not in classes(n.element):
            continue
        value = literal(n.element, "value", RDF)
        if value:
            assigners = nodes(n.element, "assigner")
            assigner = org_code(assigners[0]) if assigners else None
            return value, assigner
    return None


def org_code(node: Node) -> str | None:
    """An organisation's code (bf:code, else the organizations URI tail), else its name."""
    if node.element is not None:
        value = literal(node.element, "code")
        if value:
            return value
    if node.uri and "/organizations/" in node.uri:
        return uri_tail(node.uri)
    return label(node.element)


def marc_key(el: Element) -> MarcKey | None:
    """The node's preferred-script bflc:marcKey (or a legacy bflc:name00MarcKey-style key)."""
    keys = [
        child
        for child in el
        if namespace(child.tag) == BFLC
        and local_name(child.tag).lower().endswith("marckey")
        and (child.text or "").strip()
    ]
    pairs = [(c, k) for c in keys if (k := parse_marc_key(c.text or "")) is not None]
    # The romanised key first: an 880 key (LoC writes one per alternate-script field) or a
    # key in another script is the parallel, left out like every non-Latin parallel value.
    ranked = sorted(
        pairs,
        key=lambda pair: (
            pair[1].tag == "880",
            pair[0].get(XML_LANG) is not None,
            is_non_latin(pair[0].text or ""),
        ),
    )
    return ranked[0][1] if ranked else None


def authority_links(uri: str | None) -> list[Subfield]:
    """$0 for an authority/vocabulary URI, $1 for a real-world-object URI; none for local ones."""
    if not uri or uri.startswith("_:") or "#" in uri or "/resources/" in uri:
        return []
    if not uri.startswith(("http://", "https://")):
        return []
    return [Subfield("1" if "/rwo/" in uri else "0", uri)]


def source_code(el: Element) -> str | None:
    for n in nodes(el, "source"):
        value = code(n) or (label(n.element) if n.element is not None else None)
        if value:
            return value
    return None


def is_physical(note: Element) -> bool:
    kinds = {c.lower() for c in classes(note)} | {
        v.lower() for v in preferred_literals(note, "noteType")
    }
    return "physical" in kinds or "physical details" in kinds
