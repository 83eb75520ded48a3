"""Reading RDF/XML node elements: namespaces, properties, labels and class names."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, TypeAlias

BF = "http://id.loc.gov/ontologies/bibframe/"
BFLC = "http://id.loc.gov/ontologies/bflc/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
MADS = "http://www.loc.gov/mads/rdf/v1#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

ABOUT = f"{{{RDF}}}about"
RESOURCE = f"{{{RDF}}}resource"
NODE_ID = f"{{{RDF}}}nodeID"

# lxml ships no type stubs in this environment, so elements are typed loosely.
Element: TypeAlias = Any


@dataclass(frozen=True)
class Node:
    """The object of a property: an inline description, or only a reference by URI."""

    element: Element | None
    uri: str | None


def local_name(tag: object) -> str:
    """`{ns}Name` -> `Name`; comments and processing instructions have no name."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def namespace(tag: object) -> str:
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].split("}", 1)[0]


def node_id(el: Element) -> str | None:
    """The identity of a node element within the document (rdf:about or rdf:nodeID)."""
    about = el.get(ABOUT)
    if about:
        return about
    nid = el.get(NODE_ID)
    return f"_:{nid}" if nid else None


def classes(el: Element) -> set[str]:
    """Local names of the node's classes: its typed element name plus each rdf:type."""
    names = set()
    if not (namespace(el.tag) == RDF and local_name(el.tag) == "Description"):
        names.add(local_name(el.tag))
    for t in el.findall(f"{{{RDF}}}type"):
        res = t.get(RESOURCE, "")
        names.add(res.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return names


def props(el: Element, name: str, ns: str = BF) -> list[Element]:
    return el.findall(f"{{{ns}}}{name}")


def nodes(el: Element, name: str, ns: str = BF) -> list[Node]:
    """Objects of a property, inline node elements or rdf:resource references."""
    out: list[Node] = []
    for p in props(el, name, ns):
        res = p.get(RESOURCE) or (f"_:{p.get(NODE_ID)}" if p.get(NODE_ID) else None)
        if res:
            out.append(Node(None, res))
            continue
        for child in p:
            if isinstance(child.tag, str):
                out.append(Node(child, node_id(child)))
    return out


def is_non_latin(text: str) -> bool:
    """True when most letters of `text` are not Latin (Han, Arabic, Cyrillic, Hebrew...).

    LoC's converter writes the 880 (alternate script) values of a field beside the romanised
    ones, often with no xml:lang to tell them apart, so the script of the text decides.
    Romanised text with diacritics (ALA-LC) is Latin: combining marks are not letters.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    other = sum(1 for c in letters if not unicodedata.name(c, "").startswith("LATIN"))
    return other * 2 > len(letters)


def _script_rank(el: Element) -> tuple[bool, bool, int]:
    """Sort key preferring Latin-script literals: MARC's 245/1XX carry the romanised form.

    The text decides before the xml:lang tag (LoC's converter has been seen to tag the
    romanised value `ja-jpan` and leave the Japanese-script one untagged); a text mixing in
    another script ranks after a wholly Latin one ("十二集… = The Forbidden City" is the
    880 parallel of "shi er ji … = The Forbidden City").
    """
    text = el.text or ""
    mixed = any(c.isalpha() and not unicodedata.name(c, "").startswith("LATIN") for c in text)
    lang = (el.get(XML_LANG) or "").lower()
    tag_rank = 0 if not lang else 1 if lang.endswith("-latn") or lang in ("en", "eng") else 2
    return is_non_latin(text), mixed, tag_rank


def literals(el: Element, name: str, ns: str = BF) -> list[str]:
    """Non-empty literal values of a property, preferred script first, stripped."""
    found = [p for p in props(el, name, ns) if (p.text or "").strip()]
    found.sort(key=_script_rank)
    return [(p.text or "").strip() for p in found]


def literal(el: Element, name: str, ns: str = BF) -> str | None:
    values = literals(el, name, ns)
    return values[0] if values else None


def preferred_literals(el: Element, name: str, ns: str = BF) -> list[str]:
    """Literal values in the preferred script only (drops the parallel non-Latin ones)."""
    found = [p for p in props(el, name, ns) if (p.text or "").strip()]
    if not found:
        return []
    best = min(_script_rank(p) for p in found)
    return [(p.text or "").strip() for p in found if _script_rank(p) == best]


def parallel_literals(el: Element) -> int:
    """How many literals under `el` are left out as another script's parallel of a value.

    A literal is a parallel when a sibling of the same property holds a preferred-script
    value; `preferred_literals` leaves it out, and the report counts it here.
    """
    dropped = 0
    for parent in el.iter():
        by_tag: dict[str, list[tuple[bool, bool, int]]] = {}
        for child in parent:
            if isinstance(child.tag, str) and len(child) == 0 and (child.text or "").strip():
                by_tag.setdefault(child.tag, []).append(_script_rank(child))
        for ranks in by_tag.values():
            dropped += sum(1 for r in ranks if r > min(ranks))
    return dropped


def label(el: Element | None) -> str | None:
    """What a node is called: rdfs:label, madsrdf:authoritativeLabel, rdf:value or bf:code."""
    if el is None:
        return None
    for name, ns in (
        ("label", RDFS),
        ("authoritativeLabel", MADS),
        ("value", RDF),
        ("code", BF),
    ):
        value = literal(el, name, ns)
        if value:
            return value
    return None


def uri_tail(uri: str | None) -> str:
    """Last path segment of a URI (a vocabulary code such as `eng` or `aut`)."""
    if not uri:
        return ""
    return uri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def code(node: Node) -> str | None:
    """A controlled value's code: bf:code, else the tail of an id.loc.gov vocabulary URI."""
    if node.element is not None:
        value = literal(node.element, "code")
        if value:
            return value
    if node.uri and "/vocabulary/" in node.uri:
        return uri_tail(node.uri)
    return None
