"""BIBFRAME made by LoC's converter from 678 real records, mapped back and compared with them.

The fixture pair (tests/fixtures/bibframe/corpus-regression-*, made once by
make_corpus_regression.py, provenance in PROVENANCE.md) needs no converter at test time.
"""

from __future__ import annotations

import pytest
from pymarc import Field, Record
from tests.bibframe_agreement import load_source, map_back

Mapped = tuple[dict[str, Record], dict[str, Record]]


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Mapped:
    ours, reasons = map_back(tmp_path_factory.mktemp("corpus-regression"))
    assert reasons == {}  # every Instance LoC's converter wrote maps
    return load_source(), ours


def _shape(fields: list[Field]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [
        (f.tag, "".join(f.indicators), [(s.code, s.value) for s in f.subfields]) for f in fields
    ]


def test_every_converted_record_comes_back_once(mapped: Mapped) -> None:
    source, ours = mapped
    assert len(source) == 678
    assert ours.keys() == source.keys()


@pytest.mark.parametrize(
    ("control_number", "record_type"),
    [("3599298", "t"), ("2087793", "t"), ("3542217", "d"), ("3548404", "d")],
)
def test_a_manuscript_work_comes_back_as_a_manuscript_not_a_printed_item(
    mapped: Mapped, control_number: str, record_type: str
) -> None:
    source, ours = mapped
    assert str(source[control_number].leader)[6] == record_type
    assert str(ours[control_number].leader)[6] == record_type


@pytest.mark.parametrize(
    ("control_number", "level"),
    [("1133749", "c"), ("1177292", "c"), ("7704213", "d"), ("7704490", "d")],
)
def test_collection_level_records_keep_leader_07(
    mapped: Mapped, control_number: str, level: str
) -> None:
    source, ours = mapped
    assert str(source[control_number].leader)[7] == level
    assert str(ours[control_number].leader)[7] == level
