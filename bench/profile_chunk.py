"""Where process_chunk's time goes: cProfile of the real function, summed by pipeline step.

    .venv/bin/python bench/profile_chunk.py FILE.mrc [--top 25]

py-spy and pyinstrument are not in the project venv, so this uses cProfile; its per-call
overhead inflates small functions, so read the shares, not the absolute times.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from pathlib import Path

from catalog_sync.changes.state import StateStore
from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.split import split_file
from catalog_sync.paths import RuntimeLayout
from catalog_sync.pipeline.process import process_chunk

# Cumulative time of these functions, as shares of process_chunk's own cumulative time.
STEPS = {
    "prepare_record (parse, decode, validate, NFC)": ("prepare.py", "prepare_record"),
    "  of which frame_fields (parse)": ("iso2709.py", "frame_fields"),
    "  of which iso2709_overflow (size check)": ("iso2709.py", "iso2709_overflow"),
    "fingerprint v2 (PreparedRecord.fingerprint)": ("prepare.py", "fingerprint"),
    "  of which from a serialised record": ("fastprint.py", "fingerprint_record"),
    "record_key": ("fingerprint.py", "record_key"),
    "iter_chunk (framing, file reads)": ("reader.py", "iter_chunk"),
    "StateStore.applied (one query per chunk)": ("store.py", "run"),
    "staging lines (json.dumps of a dict)": ("process.py", "staging_line"),
    "version-1 look-back (once per record per upgrade)": ("rebaseline.py", "same_as_stored"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("file", type=Path)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    vendor = VendorConfig(name="bench", source=SourceConfig(inbox="bench"))
    refs = split_file(describe_landing(args.file, vendor="bench"), vendor.records_per_chunk)
    root = Path(tempfile.mkdtemp(prefix="profile-chunk-"))
    layout, state = RuntimeLayout(root), StateStore(f"sqlite:///{root / 'state.db'}")
    for ref in refs[:1]:  # warm-up: imports, rulebook, caches
        process_chunk(ref, vendor, layout, state, "warm-up")
    profile = cProfile.Profile()
    profile.enable()
    for ref in refs:
        process_chunk(ref, vendor, layout, state, "profiled")
    profile.disable()
    stats = pstats.Stats(profile)
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(v[3] for k, v in raw.items() if k[2] == "process_chunk")
    records = sum(ref.record_count for ref in refs)
    print(f"{records:,} records, process_chunk {total:.2f} s under cProfile")
    for label, (file, func) in STEPS.items():
        cum = sum(v[3] for k, v in raw.items() if k[0].endswith(file) and k[2] == func)
        print(f"{label:50s} {cum:7.2f} s {cum / total:6.1%}")
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
