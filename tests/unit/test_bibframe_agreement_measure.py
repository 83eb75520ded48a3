"""The bracket normalisation of the BIBFRAME agreement measure, on real source records.

The normalised figures in docs/bibframe-mapping.md are only honest if the rule reproduces
LoC's converter's per-subfield brackets and nothing more: these tests pin both halves.
"""

from __future__ import annotations

import copy

import pytest
from pymarc import Record, Subfield
from tests.bibframe_agreement import agreement, converter_brackets, load_source, map_back

Mapped = tuple[dict[str, Record], dict[str, Record]]
_IMPRINT = "260/264 (converter's brackets)"


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Mapped:
    ours, _ = map_back(tmp_path_factory.mktemp("agreement-measure"))
    return load_source(), ours


def test_one_bracket_across_an_imprint_is_closed_in_each_subfield_as_the_converter_does(
    mapped: Mapped,
) -> None:
    source, _ = mapped
    (imprint,) = source["4603661"].get_fields("260")
    assert imprint.subfields == [
        Subfield("a", "[Mainz :"), Subfield("b", "Fust & Schöffer,"),
        Subfield("c", "after 21 August 1461]."),
    ]  # fmt: skip
    assert converter_brackets(imprint) == [
        ("a", "[Mainz]"), ("b", "[Fust & Schöffer]"), ("c", "[after 21 August 1461]"),
    ]  # fmt: skip


def test_a_publisher_after_an_unclosed_place_is_bracketed_whole_and_a_plain_date_is_not(
    mapped: Mapped,
) -> None:
    source, _ = mapped
    first = source["603464"].get_fields("260")[0]
    assert [s.value for s in first.subfields] == [
        "[St. Louis, MO :", "Science Printers and Publishers,", "c1985-",
    ]  # fmt: skip
    assert converter_brackets(first) == [
        ("a", "[St. Louis, MO]"), ("b", "[Science Printers and Publishers]"), ("c", "c1985-"),
    ]  # fmt: skip


def test_a_title_bracket_spanning_a_and_b_is_closed_in_each(mapped: Mapped) -> None:
    source, _ = mapped
    title = source["4691921"]["245"]
    assert title.get_subfields("a", "b") == ["[Almanac for 1472 :", "blood-letting calendar]."]
    assert converter_brackets(title) == [
        ("a", "[Almanac for 1472]"), ("b", "[blood-letting calendar]"),
    ]  # fmt: skip


def test_brackets_the_source_does_not_have_are_not_added(mapped: Mapped) -> None:
    source, _ = mapped
    (imprint,) = source["007177759"].get_fields("260", "264")
    assert all("[" not in s.value and "]" not in s.value for s in imprint.subfields)
    assert converter_brackets(imprint) == [(s.code, s.value.rstrip(" ,:;.")) for s in imprint]


def test_the_normalised_figure_still_counts_a_bracket_our_mapping_loses(mapped: Mapped) -> None:
    source, ours = mapped
    only = {"4603661": source["4603661"]}
    assert agreement(only, ours, [_IMPRINT])[_IMPRINT].agreed == 1
    damaged = copy.deepcopy(ours["4603661"])
    (statement,) = damaged.get_fields("264")
    statement.subfields = [Subfield(s.code, s.value.strip("[]")) for s in statement.subfields]
    (result,) = agreement(only, {"4603661": damaged}, [_IMPRINT]).values()
    assert (result.compared, result.agreed) == (1, 0)


def test_the_normalised_figure_still_counts_a_bracket_our_mapping_adds(mapped: Mapped) -> None:
    source, ours = mapped
    only = {"007177759": source["007177759"]}
    assert agreement(only, ours, [_IMPRINT])[_IMPRINT].agreed == 1
    damaged = copy.deepcopy(ours["007177759"])
    (statement,) = damaged.get_fields("264")
    statement.subfields = [Subfield(s.code, f"[{s.value}]") for s in statement.subfields]
    (result,) = agreement(only, {"007177759": damaged}, [_IMPRINT]).values()
    assert (result.compared, result.agreed) == (1, 0)


def test_strict_figures_do_not_forgive_the_converters_brackets(mapped: Mapped) -> None:
    source, ours = mapped
    only = {"4603661": source["4603661"]}
    assert agreement(only, ours, ["260/264"])["260/264"].agreed == 0
