"""Canary helpers for privacy tests: plant unique values in PII fields, then hunt for them.

    records, canaries = plant_canaries(records_read_from_a_real_file)
    write_records(records, inbox / "delivery.mrc")
    ... run the DAG on that delivery ...
    assert find_canaries([logs_dir, staging_dir, reports_dir], canaries.all) == []
    # and the ILS (emulator) must still have received canaries.ils_values

Every canary is printable ASCII with fixed width and a closing letter, so no canary is a prefix
of another and each survives UTF-8, MARC-8, JSON and NFC unchanged: a byte search finds it in
any text or binary file (gzip files are searched decompressed too).
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pymarc import Field, Leader, Record
from pymarc.field import Indicators, Subfield

from catalog_sync.privacy import PiiPolicy, load_policy


class Canaries(list[str]):
    """All planted values (it is a list of them) plus which of them the ILS must receive."""

    def __init__(self) -> None:
        super().__init__()
        self.ils_values: list[str] = []
        self.by_rule: dict[str, list[str]] = {}

    @property
    def all(self) -> list[str]:
        return list(self)


class _Minter:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def token(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:05d}Q"

    def barcode(self) -> str:
        # Codabar patron card shape (14 digits, leading 2) as the default scrubber expects.
        self.n += 1
        return f"2999{self.n:09d}7"

    def price(self) -> str:
        # An item price travels to Koha as a number: fixed width, unique, still findable.
        self.n += 1
        return f"9{self.n:05d}.37"

    def email(self) -> str:
        self.n += 1
        return f"canary.{self.n:05d}@example.org"


def _first_field_with_ind1(record: Record, tag: str, allowed: frozenset[str]) -> Field | None:
    for field in record.get_fields(tag):
        indicators = field.indicators
        if indicators is not None and indicators[0] not in allowed:
            return field
    return None


# Koha's 952 becomes an item (catalog_sync.pipeline.items): it needs a barcode and a home
# library to be written, and its prices ($g, $v) reach Koha as numbers.
KOHA_ITEM_TAG = "952"
ITEM_PRICES = frozenset("gv")


def _make_item(field: Field, mint: _Minter) -> None:
    codes = {sub.code for sub in field.subfields}
    if "p" not in codes:
        field.add_subfield("p", mint.token())
    if "a" not in codes:
        field.add_subfield("a", "MAIN")


def plant_canaries(
    records: Sequence[Record],
    policy: PiiPolicy | None = None,
    prefix: str = "QZCANARY",
) -> tuple[list[Record], Canaries]:
    """Copies of `records` with a unique canary in every policy subfield, and notes with PII.

    Per record and per policy (tag, subfield): an existing field of that tag (one the policy
    masks, i.e. not marked "not private" where the rule honours that) gets the canary as the
    subfield's value, or appended; a record without such a field gets a new one (first
    indicator 0, "private"). Each record also gets a 500 note and an 852 public note ($z)
    carrying a patron barcode and an e-mail address, and an 880 alternate-script copy of a
    541 $a.
    The input records are not modified.
    """
    policy = policy or load_policy()
    mint = _Minter(prefix)
    canaries = Canaries()

    def remember(rule: str, value: str) -> str:
        canaries.append(value)
        canaries.by_rule.setdefault(rule, []).append(value)
        # Every canary sits in a record the ILS receives in full, so it must arrive there.
        canaries.ils_values.append(value)
        return value

    planted: list[Record] = []
    for original in records:
        record = copy.deepcopy(original)
        for rule in policy.fields:
            for tag in rule.tags:
                field = _first_field_with_ind1(record, tag, rule.keep_when_ind1)
                if field is None:
                    field = Field(tag, Indicators("0", " "), [])
                    record.add_ordered_field(field)
                if tag == KOHA_ITEM_TAG:
                    _make_item(field, mint)
                for code in sorted(rule.subfields):
                    price = tag == KOHA_ITEM_TAG and code in ITEM_PRICES
                    value = remember(rule.rule, mint.price() if price else mint.token())
                    for i, sub in enumerate(field.subfields):
                        if sub.code == code:
                            field.subfields[i] = Subfield(code, value)
                            break
                    else:
                        field.add_subfield(code, value)
        barcode, email = mint.barcode(), mint.email()
        remember("scrub:patron-barcode", barcode)
        remember("scrub:email", email)
        record.add_ordered_field(
            Field(
                "500",
                Indicators(" ", " "),
                [Subfield("a", f"Returned by patron {barcode}; questions to {email}.")],
            )
        )
        barcode, email = mint.barcode(), mint.email()
        remember("scrub:patron-barcode", barcode)
        remember("scrub:email", email)
        record.add_ordered_field(
            Field(
                "852",
                Indicators(" ", " "),
                [Subfield("a", "DLC"), Subfield("z", f"Hold for card {barcode} ({email})")],
            )
        )
        linked = remember("acq-source", mint.token())
        record.add_ordered_field(
            Field("880", Indicators("0", " "), [Subfield("6", "541-00"), Subfield("a", linked)])
        )
        planted.append(record)
    return planted, canaries


def write_records(records: Iterable[Record], path: Path) -> Path:
    """Write records as a UTF-8 ISO 2709 delivery (leader/09 'a'), e.g. into a vendor inbox.

    Records read from a MARC-8 file hold decoded text; pymarc would write them back as
    Latin-1 unless leader/09 says UTF-8, so it is set on copies here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for record in records:
            utf8 = copy.deepcopy(record)
            leader = str(utf8.leader)
            utf8.leader = Leader(leader[:9] + "a" + leader[10:])
            out.write(utf8.as_marc())
    return path


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            # Directory links are not followed (no cycles); file links are read through.
            for dirpath, _, filenames in sorted(os.walk(path, followlinks=False)):
                for name in sorted(filenames):
                    candidate = Path(dirpath) / name
                    if candidate.is_file():
                        yield candidate
        elif path.is_file():
            yield path


def find_canaries(paths: Iterable[Path], canaries: Iterable[str]) -> list[tuple[Path, str]]:
    """Every (file, canary) where a canary occurs in any file under `paths` (text or binary)."""
    values = sorted(set(canaries), key=len, reverse=True)
    if not values:
        return []
    pattern = re.compile(b"|".join(re.escape(v.encode("utf-8")) for v in values))
    hits: set[tuple[Path, str]] = set()
    for path in _files(paths):
        data = path.read_bytes()
        blobs = [data]
        if data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                blobs.append(gzip.decompress(data))
        for blob in blobs:
            for match in pattern.finditer(blob):
                hits.add((path, match.group().decode("utf-8")))
    return sorted(hits)
