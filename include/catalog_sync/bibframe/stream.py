"""Stream a BIBFRAME RDF/XML file one Instance at a time, with its Work and Items resolved."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]

from catalog_sync.bibframe.errors import BibframeFileError
from catalog_sync.bibframe.rdfxml import (
    BF,
    RDF,
    Element,
    classes,
    local_name,
    namespace,
    node_id,
    nodes,
)
from catalog_sync.bibframe.spill import KEEP_IN_MEMORY, HeldNodes

# BIBFRAME 2 subclasses, so a node typed `bf:Print` or `bf:Text` is still found.
INSTANCE_CLASSES = frozenset(
    {"Instance", "Print", "Manuscript", "Archival", "Tactile", "Electronic"}
)
WORK_CLASSES = frozenset(
    {
        "Work", "Text", "Cartography", "Audio", "MusicAudio", "NonMusicAudio",
        "NotatedMusic", "NotatedMovement", "Dataset", "StillImage", "MovingImage",
        "Object", "Multimedia", "MixedMaterial",
    }
)  # fmt: skip
ITEM_CLASSES = frozenset({"Item"})


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


def _kind(el: Element) -> str:
    """Work, Instance or Item: the element's own name decides, then its rdf:type.

    LoC types some Works `bf:Manuscript` too, so an explicit class wins over a subclass,
    and a content class (Text, NotatedMusic...) marks a Work before an Instance subclass.
    """
    own = local_name(el.tag) if namespace(el.tag) == BF else ""
    names = classes(el)
    for explicit, kind in (("Instance", "instance"), ("Work", "work"), ("Item", "item")):
        if own == explicit:
            return kind
    for explicit, kind in (("Instance", "instance"), ("Work", "work"), ("Item", "item")):
        if explicit in names:
            return kind
    if names & WORK_CLASSES:
        return "work"
    if names & INSTANCE_CLASSES:
        return "instance"
    return "other"


@dataclass
class _Entry:
    kind: str
    ident: str | None
    work_ref: str | None = None  # Instance -> Work (by reference, or an inline copy's URI)
    item_refs: tuple[str, ...] = ()  # Instance -> Items by reference
    of_instance: str | None = None  # Item -> Instance (itemOf), by reference or inline


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


def _index_entry(el: Element) -> _Entry:
    kind = _kind(el)
    entry = _Entry(kind=kind, ident=node_id(el))
    if kind == "instance":
        # Inline copies count too: a top-level description of the same URI replaces them.
        refs = [n.uri for n in nodes(el, "instanceOf")]
        entry.work_ref = refs[0] if refs else None
        entry.item_refs = tuple(n.uri for n in nodes(el, "hasItem") if n.uri)
    elif kind == "item":
        targets = [n.uri for n in nodes(el, "itemOf")]
        entry.of_instance = targets[0] if targets else None
    return entry


def _index(path: Path) -> list[_Entry]:
    """First pass: who references whom, as identifiers only (no element content is kept)."""
    return [_index_entry(el) for _, el in _top_level(path)]


def iter_instance_descriptions(
    path: Path, keep_in_memory: int = KEEP_IN_MEMORY, spill_dir: Path | None = None
) -> Iterator[InstanceDescription]:
    """Yield every top-level Instance of an RDF/XML file with its Work and Items.

    Two streaming passes with lxml iterparse, never a whole-graph load:

    1. An index pass reads each top-level node (Work, Instance, Item), notes its
       rdf:about and the rdf:resource references between them (instanceOf, hasItem,
       itemOf) and discards the node at once: memory holds a few strings per node.
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
    index = _index(path)
    top_ids = {e.ident: i for i, e in enumerate(index) if e.ident and e.kind != "other"}

    needs: dict[int, set[int]] = {}  # instance position -> positions of Work/Items it needs
    for pos, entry in enumerate(index):
        if entry.kind != "instance":
            continue
        wanted: set[int] = set()
        # Only a Work (or an Item) can satisfy a need, so a stray link can never stall the queue.
        work_pos = top_ids.get(entry.work_ref or "")
        if work_pos is not None and index[work_pos].kind == "work":
            wanted.add(work_pos)
        for ref in entry.item_refs:
            item_pos = top_ids.get(ref)
            if item_pos is not None and index[item_pos].kind == "item":
                wanted.add(item_pos)
        needs[pos] = wanted
    for pos, entry in enumerate(index):
        owner = top_ids.get(entry.of_instance or "")
        if entry.kind == "item" and owner is not None and owner in needs:
            needs[owner].add(pos)
    users: dict[int, int] = {}
    for wanted in needs.values():
        for pos in wanted:
            users[pos] = users.get(pos, 0) + 1

    waiting: deque[int] = deque()
    with HeldNodes(keep_in_memory, spill_dir) as held:
        for pos, el in _top_level(path):
            if pos in users or pos in needs:
                held[pos] = el
            if pos in needs:
                waiting.append(pos)
            while waiting and all(p in held for p in needs[waiting[0]]):
                inst_pos = waiting.popleft()
                yield _describe(inst_pos, held, needs[inst_pos], index)
                del held[inst_pos]
                for p in needs[inst_pos]:
                    users[p] -= 1
                    if users[p] == 0:
                        del held[p]


def _describe(
    pos: int, held: HeldNodes, wanted: set[int], index: list[_Entry]
) -> InstanceDescription:
    instance = held[pos]
    work: Element | None = None
    work_uri: str | None = None
    for n in nodes(instance, "instanceOf"):
        work_uri = n.uri
        break
    for p in sorted(wanted):
        if index[p].kind == "work":
            work = held[p]
    if work is None:
        inline = [n.element for n in nodes(instance, "instanceOf") if n.element is not None]
        work = inline[0] if inline else None
    items = [held[p] for p in sorted(wanted) if index[p].kind == "item"]
    seen = {node_id(i) for i in items}
    for n in nodes(instance, "hasItem"):
        if n.element is not None and node_id(n.element) not in seen:
            items.append(n.element)
    return InstanceDescription(
        position=pos,
        uri=node_id(instance),
        instance=instance,
        work=work,
        work_uri=work_uri,
        items=tuple(items),
    )


__all__ = ["InstanceDescription", "check_rdfxml", "iter_instance_descriptions"]
