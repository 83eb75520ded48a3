"""Benchmark: masking's share of processing time (pymarc parse + mask vs parse alone).

Reads N records (default 10,000) of the Library of Congress open-access slice in the shared
corpus, cycling through its files when they hold fewer, into memory first so disk reads are not
timed. Then times, best of --repeat rounds:
  parse       a streaming pymarc MARCReader over the N records, as process_chunk reads a chunk
  parse+mask  the same, plus Masker.mask_record() on every record
and prints masking's share = (parse+mask - parse) / (parse+mask). The raw-bytes masker used for
reject files is timed too, for reference. Not a test: nothing is asserted.

    .venv/bin/python bench/mask_bench.py [--records 10000] [--repeat 3] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pymarc import MARCReader, Record

from catalog_sync.privacy import Masker, load_policy

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_corpus() -> Path:
    shared = Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared"))
    return shared / "corpus" / "loc-marc-open-access"


def load_raw_records(corpus: Path, n: int) -> list[bytes]:
    """N raw ISO 2709 records (cycling over the folder's .mrc files), parsed once to check them."""
    files = sorted(corpus.glob("*.mrc"))
    if not files:
        raise SystemExit(f"no .mrc files under {corpus}")
    pool: list[bytes] = []
    for path in files:
        with path.open("rb") as fh:
            reader = MARCReader(fh, to_unicode=True, permissive=True)
            for record in reader:
                if record is not None:
                    pool.append(reader.current_chunk)
    return [pool[i % len(pool)] for i in range(n)]


def read(data: bytes) -> Iterator[Record | None]:
    return iter(
        MARCReader(io.BytesIO(data), to_unicode=True, permissive=True, utf8_handling="replace")
    )


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=default_corpus())
    ap.add_argument(
        "--scan-all-tags",
        action="store_true",
        help="scrub every data field of the masked copy (scrub_record_tags: [XXX])",
    )
    args = ap.parse_args(argv)

    raws = load_raw_records(args.corpus, args.records)
    # A throwaway key: the benchmark never sees the real one.
    policy = load_policy()
    if args.scan_all_tags:
        policy = policy.model_copy(update={"scrub_record_tags": ("XXX",)})
    masker = Masker(policy, secrets.token_bytes(32))

    data = b"".join(raws)

    def parse_only() -> None:
        for _record in read(data):
            pass

    def parse_and_mask() -> None:
        for record in read(data):
            if record is not None:
                masker.mask_record(record)

    def raw_mask() -> None:
        for raw in raws:
            masker.mask_raw_iso2709(raw)

    parsed = [r for r in read(data) if r is not None]

    def mask_only() -> None:
        for record in parsed:
            masker.mask_record(record)

    def mask_shared() -> None:
        for record in parsed:
            masker.mask_record(record, share_unchanged=True)

    # The machine is shared, so rounds are interleaved and the best of each kind is kept.
    t_parse = t_both = t_mask = t_shared = float("inf")
    for _ in range(args.repeat):
        t_parse = min(t_parse, best_of(1, parse_only))
        t_both = min(t_both, best_of(1, parse_and_mask))
        t_mask = min(t_mask, best_of(1, mask_only))
        t_shared = min(t_shared, best_of(1, mask_shared))
    t_raw = best_of(args.repeat, raw_mask)
    n = len(raws)
    print(f"records:            {n:,} from {args.corpus}")
    print(f"scrubbed tags:      {', '.join(policy.scrub_record_tags)}")
    print(f"parse:              {t_parse:.3f} s  ({t_parse / n * 1e6:.1f} us/record)")
    print(f"parse+mask:         {t_both:.3f} s  ({t_both / n * 1e6:.1f} us/record)")
    print(f"mask_record alone:  {t_mask:.3f} s  ({t_mask / n * 1e6:.1f} us/record)")
    print(f"  share_unchanged:  {t_shared:.3f} s  ({t_shared / n * 1e6:.1f} us/record)")
    print(f"mask_raw_iso2709:   {t_raw / n * 1e6:.1f} us/record (reject-file path, for reference)")
    print(f"masking share, (parse+mask - parse) / (parse+mask): {(t_both - t_parse) / t_both:.1%}")
    print(f"masking share, mask / (parse + mask):               {t_mask / (t_parse + t_mask):.1%}")
    shared_share = t_shared / (t_parse + t_shared)
    print(f"  with share_unchanged=True, mask / (parse + mask):  {shared_share:.1%}")
    print(f"masked values per rule: {masker.counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
