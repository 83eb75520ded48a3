"""Cost of prepare_record (validate + normalize) per record next to pymarc's own parse.

    .venv/bin/python bench/ingest_bench.py [FILE.mrc] [--reps N]

Default file: the shared corpus' loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc.
A MARCXML file is compared with pymarc's parse_xml_to_array of the whole file.
Both sides get the same record bytes already in memory (framing is measured separately), so the
ratio is parse + validate + normalize over parse. Best of N interleaved rounds after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pymarc

from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, prepare_record
from catalog_sync.marc.reader import RawRecord, iter_chunk
from catalog_sync.marc.split import split_file

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared"))
DEFAULT_FILE = (
    SHARED / "corpus" / "loc-marc-open-access" / "BooksAll.2016.part01.utf8.first5000.mrc"
)


def _interleaved(cases: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    """Best time per case over `reps` rounds, the cases alternating inside each round.

    Alternating spreads load from other processes over all cases alike; the minimum is the
    run least disturbed by them (this machine is shared).
    """
    for fn in cases.values():
        fn()  # warm-up: caches, imports
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(reps):
        for name, fn in cases.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"benchmark file not found: {args.file}", file=sys.stderr)
        return 2
    landing = describe_landing(args.file, vendor="bench")
    refs = split_file(landing, records_per_chunk=2000)
    raws: list[RawRecord] = [raw for ref in refs for raw in iter_chunk(ref)]
    vendor = VendorConfig(name="bench", source=SourceConfig(inbox="bench"))
    n = len(raws)

    xml = landing.format == "marcxml"

    def pymarc_parse() -> None:
        if xml:  # pymarc has no per-record MARCXML parser: its whole-file SAX parse instead
            pymarc.parse_xml_to_array(str(args.file), strict=False)
            return
        for raw in raws:
            pymarc.Record(raw.data, to_unicode=True, hide_utf8_warnings=True)

    def pymarc_reader() -> None:
        if xml:
            pymarc.parse_xml_to_array(str(args.file), strict=False)
            return
        with args.file.open("rb") as fh:
            for _ in pymarc.MARCReader(
                fh, to_unicode=True, hide_utf8_warnings=True, permissive=True
            ):
                pass

    def read_and_prepare() -> None:
        for ref in refs:
            for raw in iter_chunk(ref):
                prepare_record(raw, landing.format, vendor)

    def prepare_all() -> None:
        for raw in raws:
            prepare_record(raw, landing.format, vendor)

    def frame_all() -> None:
        for ref in refs:
            for _ in iter_chunk(ref):
                pass

    accepted = sum(
        isinstance(prepare_record(raw, landing.format, vendor), PreparedRecord) for raw in raws
    )
    best = _interleaved(
        {
            "pymarc": pymarc_parse,
            "prepare": prepare_all,
            "frame": frame_all,
            "reader": pymarc_reader,
            "pipeline": read_and_prepare,
        },
        args.reps,
    )
    t_pymarc, t_prepare, t_frame = best["pymarc"], best["prepare"], best["frame"]
    t_reader, t_pipeline = best["reader"], best["pipeline"]
    print(f"file: {args.file.name} ({n:,} records, {landing.size:,} bytes, {accepted:,} accepted)")
    for label, seconds in (
        ("pymarc parse_xml_to_array" if xml else "pymarc Record(bytes) parse", t_pymarc),
        ("prepare_record (all stages)", t_prepare),
        ("framing (split + iter_chunk)", t_frame),
        ("pymarc parse_xml_to_array" if xml else "pymarc MARCReader(file)", t_reader),
        ("iter_chunk + prepare_record", t_pipeline),
    ):
        print(f"{label:30s}: {n / seconds:10,.0f} rec/s {seconds / n * 1e6:7.1f} us/rec")
    extra = (t_prepare / t_pymarc - 1) * 100
    print(
        f"prepare / pymarc parse = {t_prepare / t_pymarc:.2f} ({extra:+.0f}% on top of the parse)"
    )
    print(f"read+prepare / MARCReader = {t_pipeline / t_reader:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
