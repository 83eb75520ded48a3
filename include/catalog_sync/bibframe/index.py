"""The first pass over a BIBFRAME file: which Work and Items each Instance needs, in arrays.

The index is kept for the whole second pass, so it is the part of a conversion that grows
with the file. It holds numbers only: a kind byte per top-level node, and per Instance the
positions of the nodes it needs (offsets into one flat array). Identifiers are compared by a
64-bit hash while the file is read; the strings are not kept, except the last RECENT_IDENTS
(to tell a node described twice from a collision) and, in the rare case that two top-level
nodes share a hash with no way to tell, those of that hash (read again: `_clash_strings`).
Measured on copies of the LoC regression record: ~1.25 KiB of Python heap a record as
dataclasses and strings, ~0.12 KiB as arrays (bench/README.md, "BIBFRAME memory").
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from catalog_sync.bibframe.rdfxml import BF, Element, classes, local_name, namespace, node_id, nodes

# Kinds as bytes, so the index costs one byte per node for them.
OTHER, WORK, INSTANCE, ITEM = 0, 1, 2, 3
# The reference kinds: which property links the two nodes.
INSTANCE_OF, HAS_ITEM, ITEM_OF = 0, 1, 2

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

# How many recent identifiers are kept as strings, so that a node described twice a few
# nodes apart (as LoC's converter does for some records) is told from a hash collision
# without reading the file again.
RECENT_IDENTS = 1024

IdentHash = Callable[[str], int]
TopLevel = Callable[[], Iterable[tuple[int, Element]]]

# str's own hash: 64 bits, cached on the string, salted per process (the index lives in one
# process). A module attribute so a test can force collisions.
IDENT_HASH: IdentHash = hash


def kind_of(el: Element) -> int:
    """WORK, INSTANCE or ITEM: the element's own name decides, then its rdf:type.

    LoC types some Works `bf:Manuscript` too, so an explicit class wins over a subclass,
    and a content class (Text, NotatedMusic...) marks a Work before an Instance subclass.
    """
    own = local_name(el.tag) if namespace(el.tag) == BF else ""
    names = classes(el)
    for explicit, kind in (("Instance", INSTANCE), ("Work", WORK), ("Item", ITEM)):
        if own == explicit:
            return kind
    for explicit, kind in (("Instance", INSTANCE), ("Work", WORK), ("Item", ITEM)):
        if explicit in names:
            return kind
    if names & WORK_CLASSES:
        return WORK
    if names & INSTANCE_CLASSES:
        return INSTANCE
    return OTHER


def references(el: Element, kind: int) -> Iterator[tuple[int, str]]:
    """The links of a node that the grouping follows, as (reference kind, identifier).

    An Instance's first instanceOf only (an inline copy's URI counts: a top-level
    description of the same URI replaces it), every hasItem, and an Item's first itemOf.
    """
    if kind == INSTANCE:
        works = nodes(el, "instanceOf")
        if works and works[0].uri:
            yield INSTANCE_OF, works[0].uri
        for n in nodes(el, "hasItem"):
            if n.uri:
                yield HAS_ITEM, n.uri
    elif kind == ITEM:
        owners = nodes(el, "itemOf")
        if owners and owners[0].uri:
            yield ITEM_OF, owners[0].uri


@dataclass(frozen=True)
class NodeIndex:
    """Per top-level node: its kind; per Instance: the sorted positions of what it needs."""

    kinds: array[int]  # 'B' per position
    starts: array[int]  # 'q', len = nodes + 1: needs of p = wanted[starts[p]:starts[p+1]]
    wanted: array[int]  # 'q'
    users: array[int]  # 'i': how many Instances need each position

    def needs(self, pos: int) -> array[int]:
        return self.wanted[self.starts[pos] : self.starts[pos + 1]]

    def nbytes(self) -> int:
        """Bytes of the arrays' buffers (what the index costs for the second pass)."""
        return sum(a.itemsize * len(a) for a in (self.kinds, self.starts, self.wanted, self.users))


class PositionTable:
    """Identifier hash -> position, open addressing in two arrays.

    A dict of the same int keys costs ~100 bytes a node (the key and value objects, the
    entry); these arrays cost 16 bytes a slot at most two-thirds full, and are only kept
    while the index is built.
    """

    def __init__(self, slots: int = 1024) -> None:
        self._keys = array("q", [0]) * slots
        self._vals = array("q", [0]) * slots  # position + 1; 0 marks an empty slot
        self._used = 0

    def _slot(self, key: int) -> int:
        mask = len(self._keys) - 1
        i = key & mask
        while self._vals[i] and self._keys[i] != key:
            i = (i + 1) & mask
        return i

    def get(self, key: int) -> int:
        """The position stored for `key`, -1 if none."""
        return self._vals[self._slot(key)] - 1

    def put(self, key: int, pos: int) -> None:
        i = self._slot(key)
        if not self._vals[i]:
            self._used += 1
            if self._used * 3 > len(self._keys) * 2:
                self._grow()
                i = self._slot(key)
        self._keys[i] = key
        self._vals[i] = pos + 1

    def _grow(self) -> None:
        keys, vals = self._keys, self._vals
        self._keys = array("q", [0]) * (2 * len(keys))
        self._vals = array("q", [0]) * (2 * len(keys))
        for key, val in zip(keys, vals, strict=True):
            if val:
                j = self._slot(key)
                self._keys[j], self._vals[j] = key, val


def build_index(
    top_level: TopLevel, ident_hash: IdentHash | None = None, recent: int = RECENT_IDENTS
) -> NodeIndex:
    """Read the file once (twice if two top-level identifiers share a hash) and group it.

    `top_level` yields (position, element) of each top-level node afresh on each call.
    A reference whose hash matches a top-level node it does not name (a collision with a
    node that is not top-level) still lands here; the second pass checks the identifiers.
    """
    ident_hash = ident_hash or IDENT_HASH
    kinds = array("B")
    ref_from, ref_hash, ref_kind = array("q"), array("q"), array("B")
    lookup = PositionTable()  # ident hash -> last position of a Work, Instance or Item
    latest: dict[int, str] = {}  # the last `recent` identifiers, by hash, in insertion order
    clashes: set[int] = set()  # hashes two top-level nodes share with (maybe) other idents
    for pos, el in top_level():
        kind = kind_of(el)
        kinds.append(kind)
        ident = node_id(el) if kind != OTHER else None
        if ident:
            h = ident_hash(ident)
            if lookup.get(h) >= 0 and h not in clashes and latest.get(h) != ident:
                clashes.add(h)  # a collision, or a duplicate too far back to tell: re-read
            lookup.put(h, pos)  # a later description of the same node wins
            latest.pop(h, None)
            latest[h] = ident
            if len(latest) > recent:
                del latest[next(iter(latest))]
        for rkind, target in references(el, kind):
            ref_from.append(pos)
            ref_hash.append(ident_hash(target))
            ref_kind.append(rkind)
    latest.clear()
    exact, exact_refs = (
        _clash_strings(top_level, clashes, ref_hash, ident_hash) if clashes else ({}, {})
    )
    targets = array(
        "q",
        (exact.get(exact_refs[i], -1) if h in clashes else lookup.get(h)
         for i, h in enumerate(ref_hash)),
    )  # fmt: skip
    # The hash table goes before the grouping arrays are made: it is the largest part.
    del lookup, exact, exact_refs, ref_hash
    return _group(kinds, _pairs(kinds, ref_from, ref_kind, targets))


def _clash_strings(
    top_level: TopLevel,
    clashes: set[int],
    ref_hash: array[int],
    ident_hash: IdentHash,
) -> tuple[dict[str, int], dict[int, str]]:
    """Second read for the clashing hashes only: their identifiers and references as strings.

    References are numbered in the order the first pass met them, so the same walk finds
    them again. Memory is proportional to the nodes that clash, not to the file.
    """
    exact: dict[str, int] = {}
    exact_refs: dict[int, str] = {}
    i = 0
    for pos, el in top_level():
        kind = kind_of(el)
        ident = node_id(el) if kind != OTHER else None
        if ident and ident_hash(ident) in clashes:
            exact[ident] = pos
        for _, target in references(el, kind):
            if ref_hash[i] in clashes:
                exact_refs[i] = target
            i += 1
    return exact, exact_refs


def _pairs(
    kinds: array[int],
    ref_from: array[int],
    ref_kind: array[int],
    targets: Iterable[int],
) -> tuple[array[int], array[int]]:
    """(Instance, needed node) for each reference that lands on a node of the right kind.

    Only a Work (or an Item) can satisfy a need, so a stray link can never stall the queue.
    """
    owners, needed = array("q"), array("q")
    for i, target in enumerate(targets):
        if target < 0:
            continue
        src, rkind = ref_from[i], ref_kind[i]
        if (rkind == INSTANCE_OF and kinds[target] == WORK) or (
            rkind == HAS_ITEM and kinds[target] == ITEM
        ):
            owners.append(src)
            needed.append(target)
        elif rkind == ITEM_OF and kinds[target] == INSTANCE:
            owners.append(target)
            needed.append(src)
    return owners, needed


def _group(kinds: array[int], pairs: tuple[array[int], array[int]]) -> NodeIndex:
    """Sort the pairs by Instance (a counting sort, no list of tuples) and drop repeats."""
    owners, needed = pairs
    count = len(kinds)
    starts = array("q", [0]) * (count + 1)
    for owner in owners:
        starts[owner + 1] += 1
    for pos in range(count):
        starts[pos + 1] += starts[pos]
    fill = array("q", starts)
    flat = array("q", [0]) * len(owners)
    for owner, node in zip(owners, needed, strict=True):
        flat[fill[owner]] = node
        fill[owner] += 1
    del fill, owners, needed, pairs
    # An Item linked both ways (hasItem and itemOf) is needed once: sort and drop repeats.
    wanted, users = array("q"), array("i", [0]) * count
    compact = array("q", [0]) * (count + 1)
    for pos in range(count):
        segment = flat[starts[pos] : starts[pos + 1]]
        for node in sorted(set(segment)) if len(segment) > 1 else segment:
            wanted.append(node)
            users[node] += 1
        compact[pos + 1] = len(wanted)
    return NodeIndex(kinds=kinds, starts=compact, wanted=wanted, users=users)
