"""Garbage-collector settings for record-processing tasks, applied once at task start."""

from __future__ import annotations

import gc

# A pymarc Record is a few dozen small container objects, so the default first-generation
# threshold (700 allocations) runs a collection every few records; almost all of them are
# freed by reference counting anyway. bench/README.md has the measurements.
GEN0_THRESHOLD = 50_000
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 20


def tune_gc(*, freeze: bool = True, threshold: bool = True) -> tuple[int, int, int]:
    """Raise the collection thresholds and move objects alive now out of the collector's view.

    Call it after imports, before the records: `gc.freeze()` keeps modules, the rulebook and
    the configuration out of every later collection. Returns the thresholds in force.
    """
    if threshold:
        gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)
    if freeze:
        gc.collect()
        gc.freeze()
    return gc.get_threshold()
