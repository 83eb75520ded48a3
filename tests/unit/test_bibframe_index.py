"""The BIBFRAME index compares identifiers by hash: collisions never change what is grouped."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from catalog_sync.bibframe import index as bfindex
from catalog_sync.bibframe import iter_instance_descriptions
from catalog_sync.bibframe.index import NodeIndex, PositionTable, build_index
from catalog_sync.bibframe.rdfxml import node_id
from catalog_sync.bibframe.stream import _top_level

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bibframe"
EX = "http://example.org/t/"

# Two Instances: A with its Item inline (not a top-level node), B with a top-level Item.
_TWO_INSTANCES = f"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    xmlns:bf="http://id.loc.gov/ontologies/bibframe/">
  <bf:Work rdf:about="{EX}w"><bf:title>t</bf:title></bf:Work>
  <bf:Instance rdf:about="{EX}a">
    <bf:instanceOf rdf:resource="{EX}w"/>
    <bf:hasItem><bf:Item rdf:about="{EX}item-a"/></bf:hasItem>
  </bf:Instance>
  <bf:Instance rdf:about="{EX}b"><bf:instanceOf rdf:resource="{EX}w"/></bf:Instance>
  <bf:Item rdf:about="{EX}item-b"><bf:itemOf rdf:resource="{EX}b"/></bf:Item>
</rdf:RDF>"""


def _corpus(tmp_path: Path) -> Path:
    """LoC's output for 678 real records: it describes some Works and Instances twice."""
    dest = tmp_path / "corpus.rdf"
    dest.write_bytes(gzip.decompress((FIXTURES / "corpus-regression-bibframe.rdf.gz").read_bytes()))
    return dest


def _arrays(index: NodeIndex) -> tuple[list[int], ...]:
    return tuple(list(a) for a in (index.kinds, index.starts, index.wanted, index.users))


def _grouping(path: Path) -> list[tuple[int, str | None, str | None, list[str | None]]]:
    return [
        (d.position, d.uri, node_id(d.work) if d.work is not None else None,
         [node_id(i) for i in d.items])
        for d in iter_instance_descriptions(path)
    ]  # fmt: skip


def test_every_identifier_sharing_one_hash_groups_the_file_as_distinct_hashes_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _corpus(tmp_path)
    expected = _grouping(src)
    # Every identifier collides: the index must read the file again and compare strings.
    monkeypatch.setattr(bfindex, "IDENT_HASH", lambda ident: 7)
    assert _grouping(src) == expected
    assert len(expected) == 678 and all(work is not None for _, _, work, _ in expected)


def test_a_node_described_twice_far_apart_is_still_one_node(tmp_path: Path) -> None:
    src = _corpus(tmp_path)
    near = build_index(lambda: _top_level(src))
    # With no recent identifiers kept, each repeat is only known to share a hash: re-read.
    far = build_index(lambda: _top_level(src), recent=0)
    assert _arrays(far) == _arrays(near)


def test_a_hash_shared_with_a_node_that_is_not_top_level_brings_in_no_stranger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "two.rdf"
    src.write_text(_TWO_INSTANCES, encoding="utf-8")
    expected = _grouping(src)
    assert expected == [
        (1, f"{EX}a", f"{EX}w", [f"{EX}item-a"]),
        (2, f"{EX}b", f"{EX}w", [f"{EX}item-b"]),
    ]

    # A's inline Item now hashes like B's top-level Item, and no two top-level nodes share
    # a hash, so the index itself cannot tell: A's hasItem lands on B's Item.
    def colliding(ident: str) -> int:
        return hash(f"{EX}item-b" if ident == f"{EX}item-a" else ident)

    monkeypatch.setattr(bfindex, "IDENT_HASH", colliding)
    assert list(build_index(lambda: _top_level(src)).needs(1)) == [0, 3]
    assert _grouping(src) == expected


def test_the_position_table_keeps_the_last_position_of_each_key_as_it_grows() -> None:
    table = PositionTable(slots=4)
    keys = [k * 4 for k in range(-500, 500)]  # same low bits: every key probes one chain
    for pos, key in enumerate(keys):
        table.put(key, pos)
    table.put(keys[10], 5000)
    assert table.get(keys[10]) == 5000
    assert [table.get(k) for k in keys[11:]] == list(range(11, len(keys)))
    assert table.get(3) == -1
