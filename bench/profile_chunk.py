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
    "  of which allows_utf8_repair (vendor getattr)": ("prepare.py", "allows_utf8_repair"),
    "record_fingerprint (canonical JSON + sha256)": ("fingerprint.py", "record_fingerprint"),
    "record_key": ("fingerprint.py", "record_key"),
    "iter_chunk (framing, file reads)": ("reader.py", "iter_chunk"),
    "StateStore.applied (one query per chunk)": ("store.py", "run"),
    "staging: model_copy": ("main.py", "model_copy"),
    "staging: model_dump": ("main.py", "model_dump"),
    "json.dumps (fingerprint's and staging's together)": ("__init__.py", "dumps"),
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
