"""Stream a BIBFRAME RDF/XML file one Instance at a time, with its Work and Items resolved."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]

from catalog_sync.bibframe.errors import BibframeFileError
from catalog_sync.bibframe.index import INSTANCE, ITEM, WORK, build_index
from catalog_sync.bibframe.rdfxml import RDF, Element, local_name, namespace, node_id, nodes
from catalog_sync.bibframe.spill import KEEP_IN_MEMORY, HeldNodes


@dataclass(frozen=True)
class InstanceDescription:
    """One Instance as described in the file, with the Work and Items it points to.

    The elements are detached subtrees: they stay valid after the iterator moves on,
    but a caller should drop them once mapped so memory stays flat.
    """

    position: int  # 0-based ordinal of the Instance among the file's top-level nodes
    uri: str | None
    instance: Element
    work: Element | None
    work_uri: str | None
    items: tuple[Element, ...] = field(default=())


def _top_level(path: Path) -> Iterator[tuple[int, Element]]:
    """Yield each top-level node element under rdf:RDF once parsed, then detach it."""
    depth = 0
    root: Element | None = None
    position = 0
    try:
        for event, el in etree.iterparse(
            str(path), events=("start", "end"), huge_tree=True, resolve_entities=False
        ):
            if event == "start":
                depth += 1
                if depth == 1:
                    root = el
                    if not (namespace(el.tag) == RDF and local_name(el.tag) == "RDF"):
                        raise BibframeFileError(
                            f"vendor file {path.name} is not BIBFRAME RDF/XML: "
                            f"its root element is {local_name(el.tag)}, not rdf:RDF"
                        )
                continue
            depth -= 1
            if depth == 1 and root is not None:
                yield position, el
                position += 1
                # Detach the finished node so the in-memory tree never grows with the file.
                root.remove(el)
    except etree.XMLSyntaxError as exc:
        raise BibframeFileError(_syntax_message(path, exc)) from exc


def _syntax_message(path: Path, exc: etree.XMLSyntaxError) -> str:
    """Name the file and where parsing stopped; lxml's own text repeats the position."""
    last = exc.error_log.last_error if exc.error_log else None
    line, column = exc.position if exc.position else (None, None)
    what = (last.message if last is not None else exc.msg) or "syntax error"
    where = f" at line {line}, column {column}" if line else ""
    return f"vendor file {path.name} is not well-formed RDF/XML{where}: {what}"


def check_rdfxml(path: Path) -> None:
    """Read the whole file once, keeping nothing: raises BibframeFileError if it is unreadable.

    Fetch calls this before landing, so a truncated or malformed delivery is refused as an
    input error up front instead of failing conversion after the file has landed.
    """
    for _ in _top_level(path):
        pass


def iter_instance_descriptions(
    path: Path, keep_in_memory: int = KEEP_IN_MEMORY, spill_dir: Path | None = None
) -> Iterator[InstanceDescription]:
    """Yield every top-level Instance of an RDF/XML file with its Work and Items.

    Two streaming passes with lxml iterparse, never a whole-graph load:

    1. An index pass reads each top-level node (Work, Instance, Item), notes its
       rdf:about and the rdf:resource references between them (instanceOf, hasItem,
       itemOf) and discards the node at once: memory holds a few numbers per node,
       identifiers compared by hash (catalog_sync.bibframe.index).
    2. A second pass yields Instances in document order. A Work or Item that some
       Instance needs is kept (detached) only from the moment it is read until the
       last Instance that needs it has been yielded; an Instance whose Work or Items
       come *after* it in the file is held until they have been read. Files written as
       "Work, then its Instances" (or the reverse, as id.loc.gov does) therefore hold
       one Work and a handful of Instances at most, whatever the file's size. A file
       that puts every Instance before every Work (or the reverse) would hold one side
       whole: past `keep_in_memory` nodes the waiting ones go to a temporary file and
       are parsed again when their partner arrives, so memory stays flat in any order
       (the file goes in `spill_dir`, the system temp folder if None).

    A Work or Item described inline (nested inside the Instance's property) is used
    when the document has no top-level description of that resource; a top-level
    description wins because LoC's inline copies are abbreviated.
    """
    index = build_index(lambda: _top_level(path))
    kinds, users = index.kinds, index.users
    # The Instances read and not yet yielded are those from `head` to the current position,
    # in document order: a position, not a queue, so waiting costs nothing per Instance.
    head = 0
    with HeldNodes(keep_in_memory, spill_dir) as held:
        for pos, el in _top_level(path):
            if users[pos] > 0 or kinds[pos] == INSTANCE:
                held[pos] = el
            while True:
                while head <= pos and kinds[head] != INSTANCE:
                    head += 1
                if head > pos:
                    break
                wanted = index.needs(head)
                if not all(p in held for p in wanted):
                    break
                yield _describe(head, held, wanted, kinds)
                del held[head]
                for p in wanted:
                    users[p] -= 1
                    if users[p] == 0:
                        del held[p]
                head += 1


def _describe(
    pos: int,
    held: HeldNodes,
    wanted: array[int],
    kinds: array[int],
) -> InstanceDescription:
    instance = held[pos]
    uri = node_id(instance)
    links = nodes(instance, "instanceOf")
    work_uri = links[0].uri if links else None
    has_item = nodes(instance, "hasItem")
    item_uris = {n.uri for n in has_item if n.uri}
    work: Element | None = None
    items: list[Element] = []
    # The index matched identifiers by 64-bit hash; a node is used only when its own
    # identifier is the one linked, so a hash shared with a node that is not top-level
    # cannot bring in a stranger.
    for p in wanted:
        node = held[p]
        ident = node_id(node)
        if kinds[p] == WORK and ident == work_uri:
            work = node
        elif kinds[p] == ITEM and (
            ident in item_uris or (uri is not None and _item_of(node) == uri)
        ):
            items.append(node)
    if work is None:
        inline = [n.element for n in links if n.element is not None]
        work = inline[0] if inline else None
    seen = {node_id(i) for i in items}
    for n in has_item:
        if n.element is not None and node_id(n.element) not in seen:
            items.append(n.element)
    return InstanceDescription(
        position=pos,
        uri=uri,
        instance=instance,
        work=work,
        work_uri=work_uri,
        items=tuple(items),
    )


def _item_of(item: Element) -> str | None:
    owners = nodes(item, "itemOf")
    return owners[0].uri if owners else None


__all__ = ["InstanceDescription", "check_rdfxml", "iter_instance_descriptions"]
