"""Cost per record of change detection in commit_chunk: field diff, masked DeepDiff, merge, parse.

Run: .venv/bin/python bench/diff_bench.py [records]  (median of 5 reps over the LoC sample)
"""

from __future__ import annotations

import copy
import io
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pymarc
from deepdiff import DeepDiff
from pymarc import Field, Indicators, Record, Subfield

from catalog_sync.changes.protected import TagSet, load_field_rules, merge_protected
from catalog_sync.changes.recordiff import content_fingerprint, diff_records, masked_changes
from catalog_sync.privacy import Masker, load_policy

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "loc-books-2016-part01-first1000.mrc"
BLANK = Indicators(" ", " ")


def timed(label: str, n: int, fn: Callable[[], object], reps: int = 5) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    per = statistics.median(runs) / n * 1e6
    print(f"{label:<58} {per:>9.1f} µs/record {n / statistics.median(runs):>10,.0f} rec/s")
    return per


def main() -> None:
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with SAMPLE.open("rb") as fh:
        before = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None][:limit]
    after: list[Record] = []
    for i, r in enumerate(before):
        changed = copy.deepcopy(r)
        if i % 2:
            changed["245"]["a"] = "Revised title"
        else:
            changed.add_ordered_field(Field("500", BLANK, [Subfield("a", "A new note.")]))
        after.append(changed)
    same = [copy.deepcopy(r) for r in before]
    rules = load_field_rules()
    ignore = TagSet(rules.protected.patterns + rules.volatile.patterns)
    masker = Masker(load_policy(), secrets.token_bytes(32))
    xml = [pymarc.record_to_xml(r, namespace=True) for r in before]
    pairs = list(zip(before, after, strict=True))
    n = len(before)
    print(f"{n} LoC records (public domain), one field changed in each 'changed' pair\n")

    timed(
        "field-level diff, identical records",
        n,
        lambda: [diff_records(a, b, rules.volatile) for a, b in zip(before, same, strict=True)],
    )
    hand = timed(
        "field-level diff, one field changed",
        n,
        lambda: [diff_records(a, b, rules.volatile) for a, b in pairs],
    )
    masked = timed(
        "  + masked DeepDiff of the changed fields only",
        n,
        lambda: [masked_changes(diff_records(a, b, rules.volatile), masker) for a, b in pairs],
    )
    whole = timed(
        "DeepDiff of whole records (as_dict), one field changed",
        min(n, 200),
        lambda: [DeepDiff(a.as_dict(), b.as_dict()) for a, b in pairs[:200]],
        reps=3,
    )
    merge = timed(
        "merge protected fields from the ILS copy",
        n,
        lambda: [merge_protected(b, a, rules.protected) for a, b in pairs],
    )
    fp = timed(
        "content fingerprint (drift check)",
        n,
        lambda: [content_fingerprint(a, ignore) for a in before],
    )
    parse = timed(
        "parse the ILS copy (MARCXML, pymarc)",
        n,
        lambda: [pymarc.parse_xml_to_array(io.BytesIO(x)) for x in xml],
    )
    # An update: parse the ILS copy, merge, fingerprint ILS copy and result, diff twice
    # (decision and report; the report's diff is inside `masked`), masked DeepDiff.
    total = parse + merge + 2 * fp + hand + masked
    print(f"\nper changed record (CPU in commit_chunk, approx.): ~{total:,.0f} µs; "
          f"diff+masked report {masked:,.0f} µs vs whole-record DeepDiff {whole:,.0f} µs "
          f"({whole / masked:.0f}x); hand diff alone {hand:.1f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
