"""Per-field agreement between source MARC records and the MARC we map back from LoC's BIBFRAME.

Shared by the regression test (tests/unit/test_bibframe_corpus_regression.py) and the
measurement script (bench/bibframe_agreement.py), so the figures in docs/bibframe-mapping.md
and the floors the test asserts come from one definition.

A field "agrees" on a record when the normalised values the source carries and the values
our mapping writes are the same multiset (so a lost value, an extra value and a duplicated
field all count as disagreement). Records where neither side has the field are not counted.
Normalisation removes only what LoC's converter removes by design: ISBD punctuation at the
end of a subfield, and surrounding spaces; case and inner text are compared as they are.
"""

from __future__ import annotations

import gzip
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pymarc import Field, Record, parse_xml_to_array

from catalog_sync.bibframe import convert_bibframe

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bibframe"
SOURCE = FIXTURES / "corpus-regression-marc.xml.gz"
BIBFRAME = FIXTURES / "corpus-regression-bibframe.rdf.gz"

_TRAILING = " /:;,.=+"
_LEADING = " =:;/"
_NAME_TAGS = ("100", "110", "111")
_ADDED_TAGS = ("700", "710", "711")


def norm(value: str) -> str:
    """A subfield value without the ISBD punctuation LoC's converter strips, in NFC."""
    # Runs of spaces collapse: LoC's converter applies normalize-space() to every value.
    text = " ".join(unicodedata.normalize("NFC", value).split()).rstrip(_TRAILING)
    return text.lstrip(_LEADING)


def _romanised(fields: Iterable[Field]) -> list[Field]:
    """Fields of the record proper: 880 alternate-script fields are compared separately."""
    return [f for f in fields if f.tag != "880"]


def _values(record: Record, tags: tuple[str, ...], codes: str) -> list[str]:
    out = []
    for f in _romanised(record.get_fields(*tags)):
        out += [norm(v) for v in f.get_subfields(*codes)]
    return sorted(v for v in out if v)


def _per_field(record: Record, tags: tuple[str, ...], codes: str) -> list[str]:
    out = []
    for f in _romanised(record.get_fields(*tags)):
        parts = [f"{s.code}={norm(s.value)}" for s in f.subfields if s.code in codes]
        if parts:
            out.append("|".join(parts))
    return sorted(out)


def _subfields(tags: tuple[str, ...], codes: str) -> Callable[[Record], list[str]]:
    return lambda record: _values(record, tags, codes)


def _fields(tags: tuple[str, ...], codes: str) -> Callable[[Record], list[str]]:
    return lambda record: _per_field(record, tags, codes)


def _leader(pos: int) -> Callable[[Record], list[str]]:
    return lambda record: [str(record.leader)[pos]]


def _isbn(record: Record) -> list[str]:
    """020 $a as the number: LoC's converter moves an inline "(pbk.)" to bf:qualifier ($q)."""
    return sorted(v.split()[0] for v in _values(record, ("020",), "a"))


def _main_entry(record: Record) -> list[str]:
    out = []
    for f in record.get_fields(*_NAME_TAGS):
        out.append(f"{f.tag}|{norm(f['a'] or '')}")
    return out


def _added_names(record: Record) -> list[str]:
    """700/710/711 as tag, name and (for name/title entries) title."""
    out = []
    for f in record.get_fields(*_ADDED_TAGS):
        title = "|".join(norm(v) for v in f.get_subfields("t"))
        out.append(f"{f.tag}|{norm(f['a'] or '')}|{title}")
    return sorted(out)


def _publication(record: Record, brackets: bool = True) -> list[str]:
    """260, 264 and pre-AACR2 262 alike (we write 264 for all): place, name, date per field."""
    out = []
    for f in record.get_fields("260", "262", "264"):
        parts = [
            f"{s.code}={norm(s.value if brackets else s.value.replace('[', '').replace(']', ''))}"
            for s in f.subfields
            if s.code in "abc"
        ]
        if parts:
            out.append("|".join(parts))
    return sorted(out)


def _publication_unbracketed(record: Record) -> list[str]:
    """As `_publication`, without square brackets.

    LoC's converter closes a bracket that spans subfields in each one ("[Mainz : Fust,
    1461]" becomes "[Mainz]", "[Fust]", "[1461]"); BIBFRAME keeps no trace of the span.
    """
    return _publication(record, brackets=False)


def _subject_650(record: Record) -> list[str]:
    out = []
    for f in record.get_fields("650"):
        out.append("--".join(norm(s.value) for s in f.subfields if s.code in "avxyz"))
    return sorted(out)


def _alternate_script(record: Record) -> list[str]:
    """880s as the field they pair with ($6 tag) and their text, linkage numbers aside."""
    out = []
    for f in record.get_fields("880"):
        link = (f["6"] or "")[:3]
        if link in ("245", "100", "110", "111", "700", "710", "711", "260", "264"):
            text = "|".join(norm(s.value) for s in f.subfields if s.code in "abcpnt")
            out.append(f"{link}|{text}")
    return sorted(out)


# The fields the "done when" names, plus the subfields behind each fix.
FIELDS: dict[str, Callable[[Record], list[str]]] = {
    "Leader/06 type": _leader(6),
    "Leader/07 level": _leader(7),
    "010 $a": _subfields(("010",), "a"),
    "020 $a": _isbn,
    "022 $a": _subfields(("022",), "a"),
    "1XX name": _main_entry,
    "245 $a": _subfields(("245",), "a"),
    "245 $b": _subfields(("245",), "b"),
    "245 $c": _subfields(("245",), "c"),
    "245 $n$p": _subfields(("245",), "np"),
    "250 $a": _subfields(("250",), "a"),
    "260/264": _publication,
    "260/264 (brackets aside)": _publication_unbracketed,
    "300 $a": _subfields(("300",), "a"),
    "300 $b": _subfields(("300",), "b"),
    "300 $c": _subfields(("300",), "c"),
    "650": _subject_650,
    "7XX names (with $t)": _added_names,
    "880 (245/1XX/7XX/26X)": _alternate_script,
}


@dataclass(frozen=True)
class FieldAgreement:
    """How many records carry a field on either side, and on how many both sides agree."""

    name: str
    compared: int
    agreed: int

    @property
    def rate(self) -> float:
        return self.agreed / self.compared if self.compared else 1.0


def _by_control_number(records: Iterable[Record]) -> dict[str, Record]:
    """Records keyed by 001; a 001 that repeats (two datasets share some) gets `#n`, in order."""
    out: dict[str, Record] = {}
    for record in records:
        key = record["001"].data.strip()
        n = 1
        while (key if n == 1 else f"{key}#{n}") in out:
            n += 1
        out[key if n == 1 else f"{key}#{n}"] = record
    return out


def load_source() -> dict[str, Record]:
    with gzip.open(SOURCE, "rb") as fh:
        return _by_control_number(r for r in parse_xml_to_array(fh) if r is not None)


def map_back(workdir: Path) -> tuple[dict[str, Record], dict[str, int]]:
    """Our MARC for every Instance of the BIBFRAME fixture, by 001, and the reject reasons."""
    rdf = workdir / "corpus-regression-bibframe.rdf"
    rdf.write_bytes(gzip.decompress(BIBFRAME.read_bytes()))
    out = workdir / "corpus-regression-ours.xml"
    report = convert_bibframe(rdf, out)
    records = [r for r in parse_xml_to_array(str(out)) if r is not None]
    return _by_control_number(records), report.reasons


def agreement(
    source: dict[str, Record], ours: dict[str, Record], names: Iterable[str] = FIELDS
) -> dict[str, FieldAgreement]:
    """Agreement per field over the source records (a record we did not map disagrees)."""
    result = {}
    for name in names:
        extract = FIELDS[name]
        compared = agreed = 0
        for key, src in source.items():
            expected = sorted(extract(src))
            got = sorted(extract(ours[key])) if key in ours else None
            if not expected and not got:
                continue
            compared += 1
            agreed += got == expected
        result[name] = FieldAgreement(name, compared, agreed)
    return result


def disagreements(
    source: dict[str, Record], ours: dict[str, Record], name: str
) -> list[tuple[str, list[str], list[str] | None]]:
    """(001, source values, our values) for each record where `name` disagrees."""
    extract = FIELDS[name]
    out = []
    for key, src in source.items():
        expected = sorted(extract(src))
        got = sorted(extract(ours[key])) if key in ours else None
        if (expected or got) and got != expected:
            out.append((key, expected, got))
    return out
