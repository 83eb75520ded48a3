"""Per-field agreement between source MARC records and the MARC we map back from LoC's BIBFRAME.

Shared by the regression test (tests/unit/test_bibframe_corpus_regression.py) and the
measurement script (bench/bibframe_agreement.py), so the figures in docs/bibframe-mapping.md
and the floors the test asserts come from one definition.

A field "agrees" on a record when the normalised values the source carries and the values
our mapping writes are the same multiset (so a lost value, an extra value and a duplicated
field all count as disagreement). Records where neither side has the field are not counted.
Normalisation removes only what LoC's converter removes by design: ISBD punctuation at the
end of a subfield, and surrounding spaces; case and inner text are compared as they are.

Square brackets get a second, separately reported figure ("… (converter's brackets)") beside
the strict one. AACR2 practice encloses adjacent supplied elements in one pair of brackets,
which in MARC can open in one subfield and close in a later one (`$a[Mainz :$bFust,$c1461]`).
BIBFRAME has one literal per subfield and no way to say a bracket spans several, so LoC's
converter closes each subfield's brackets in that subfield (utils.xsl tBalanceBrackets: an
unclosed `[` gets a `]` at the end, an unopened `]` a `[` at the start; and, in 26X only, a
`$b` with no bracket of its own after an unclosed `$a` or before an unopened `$c` is
bracketed whole, ConvSpec-Process8-ProvAct.xsl): `[Mainz]` `[Fust]` `[1461]`. The
normalised figure applies exactly that rule to the source's subfields (`converter_brackets`),
never to ours, and then also strips ISBD punctuation just inside a final `]` on both sides
(`[D.C. :` and `[D.C.]` both give `[D.C]`).
Which values are bracketed (supplied by the cataloguer) is data and still has to agree:
no bracket is removed, and a bracket our mapping lost or added still disagrees.
"""

from __future__ import annotations

import gzip
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pymarc import Field, Record, Subfield, parse_xml_to_array

from catalog_sync.bibframe import convert_bibframe

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bibframe"
SOURCE = FIXTURES / "corpus-regression-marc.xml.gz"
BIBFRAME = FIXTURES / "corpus-regression-bibframe.rdf.gz"

_TRAILING = " /:;,.=+"
_LEADING = " =:;/"
_NAME_TAGS = ("100", "110", "111")
_ADDED_TAGS = ("700", "710", "711")
_IMPRINT_TAGS = ("260", "262", "264")

Extract = Callable[[Record], list[str]]


def norm(value: str) -> str:
    """A subfield value without the ISBD punctuation LoC's converter strips, in NFC."""
    # Runs of spaces collapse: LoC's converter applies normalize-space() to every value.
    text = " ".join(unicodedata.normalize("NFC", value).split()).rstrip(_TRAILING)
    return text.lstrip(_LEADING)


def close_brackets(value: str) -> str:
    """The value as LoC's converter closes its brackets within one subfield (tBalanceBrackets)."""
    if "[" in value and "]" not in value.partition("[")[2]:
        return f"{value}]"
    if "]" in value and "[" not in value.partition("]")[0]:
        return f"[{value}"
    return value


def _inside_bracket(value: str) -> str:
    """ISBD punctuation just inside a final `]` stripped, as `norm` strips it at the end."""
    return f"{norm(value[:-1])}]" if value.endswith("]") else value


def converter_brackets(field: Field) -> list[tuple[str, str]]:
    """(code, value) of each subfield, normalised, with brackets as LoC's converter writes them."""
    subs = field.subfields
    out = []
    for i, sub in enumerate(subs):
        value = norm(sub.value)
        if field.tag in _IMPRINT_TAGS and sub.code == "b" and _between_open_brackets(subs, i):
            value = f"[{value}]"
        else:
            value = close_brackets(value)
        out.append((sub.code, _inside_bracket(value)))
    return out


def _between_open_brackets(subs: list[Subfield], i: int) -> bool:
    """ProvAct.xsl's test for bracketing a whole 26X $b: the span it sits in is unclosed."""
    if "[" in subs[i].value or "]" in subs[i].value:
        return False
    before = next((s.value for s in reversed(subs[:i]) if s.code == "a"), "")
    after = next((s.value for s in subs[i + 1 :] if s.code == "c"), "")
    return ("[" in before and "]" not in before) or ("]" in after and "[" not in after)


def _our_brackets(field: Field) -> list[tuple[str, str]]:
    """Our subfields, normalised as `converter_brackets` normalises the source's, no more."""
    return [(s.code, _inside_bracket(norm(s.value))) for s in field.subfields]


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


def _subfields(tags: tuple[str, ...], codes: str) -> Extract:
    return lambda record: _values(record, tags, codes)


def _fields(tags: tuple[str, ...], codes: str) -> Extract:
    return lambda record: _per_field(record, tags, codes)


def _leader(pos: int) -> Extract:
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


def _publication(record: Record) -> list[str]:
    """260, 264 and pre-AACR2 262 alike (we write 264 for all): place, name, date per field."""
    out = []
    for f in record.get_fields(*_IMPRINT_TAGS):
        parts = [f"{s.code}={norm(s.value)}" for s in f.subfields if s.code in "abc"]
        if parts:
            out.append("|".join(parts))
    return sorted(out)


Side = Callable[[Field], list[tuple[str, str]]]


def _bracketed_values(tags: tuple[str, ...], codes: str, side: Side) -> Extract:
    def extract(record: Record) -> list[str]:
        fields = _romanised(record.get_fields(*tags))
        return sorted(v for f in fields for c, v in side(f) if c in codes and v)

    return extract


def _bracketed_publication(side: Side) -> Extract:
    def extract(record: Record) -> list[str]:
        out = []
        for f in record.get_fields(*_IMPRINT_TAGS):
            parts = [f"{c}={v}" for c, v in side(f) if c in "abc"]
            if parts:
                out.append("|".join(parts))
        return sorted(out)

    return extract


def _extent_joined(record: Record) -> list[str]:
    """300 $a $f $g of each field joined with one space, as LoC's converter joins them into one
    `bf:extent` label (ConvSpec-3XX.xsl, 300 mode="instance": concat-nodes-space over $a $f $g)."""
    out = []
    for f in _romanised(record.get_fields("300")):
        text = norm(" ".join(v for v in f.get_subfields("a", "f", "g")))
        if text:
            out.append(text)
    return sorted(out)


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
FIELDS: dict[str, Extract] = {
    "Leader/06 type": _leader(6),
    "Leader/07 level": _leader(7),
    "010 $a": _subfields(("010",), "a"),
    "020 $a": _isbn,
    "022 $a": _subfields(("022",), "a"),
    "1XX name": _main_entry,
    "245 $a": _subfields(("245",), "a"),
    "245 $a (converter's brackets)": _bracketed_values(("245",), "a", converter_brackets),
    "245 $b": _subfields(("245",), "b"),
    "245 $b (converter's brackets)": _bracketed_values(("245",), "b", converter_brackets),
    "245 $c": _subfields(("245",), "c"),
    "245 $c (converter's brackets)": _bracketed_values(("245",), "c", converter_brackets),
    "245 $n$p": _subfields(("245",), "np"),
    "250 $a": _subfields(("250",), "a"),
    "260/264": _publication,
    "260/264 (converter's brackets)": _bracketed_publication(converter_brackets),
    "300 $a": _subfields(("300",), "a"),
    "300 $a$f$g (converter's join)": _extent_joined,
    "300 $b": _subfields(("300",), "b"),
    "300 $c": _subfields(("300",), "c"),
    "650": _subject_650,
    "7XX names (with $t)": _added_names,
    "880 (245/1XX/7XX/26X)": _alternate_script,
}


# Our side of the normalised figures: the converter's bracket rule is applied to the source
# only, so a bracket our mapping lost or added is still a disagreement.
OURS: dict[str, Extract] = {
    "245 $a (converter's brackets)": _bracketed_values(("245",), "a", _our_brackets),
    "245 $b (converter's brackets)": _bracketed_values(("245",), "b", _our_brackets),
    "245 $c (converter's brackets)": _bracketed_values(("245",), "c", _our_brackets),
    "260/264 (converter's brackets)": _bracketed_publication(_our_brackets),
    "300 $a$f$g (converter's join)": _subfields(("300",), "a"),
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
        extract, extract_ours = FIELDS[name], OURS.get(name, FIELDS[name])
        compared = agreed = 0
        for key, src in source.items():
            expected = sorted(extract(src))
            got = sorted(extract_ours(ours[key])) if key in ours else None
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
    extract, extract_ours = FIELDS[name], OURS.get(name, FIELDS[name])
    out = []
    for key, src in source.items():
        expected = sorted(extract(src))
        got = sorted(extract_ours(ours[key])) if key in ours else None
        if (expected or got) and got != expected:
            out.append((key, expected, got))
    return out
