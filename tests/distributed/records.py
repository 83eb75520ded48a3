"""Vendor files of real records for the distributed tests, and checks on the ILS's write log."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pymarc
import pytest
from bench.corpus import quick_file

from catalog_sync.emulator.control import EmulatorControl

# Suffix of the 001 of a repeated real record: "<001>-r<k>" for its k-th repeat (k >= 1).
REPEAT_SUFFIX = "-r{k}"


def real_records_file(dest: Path, count: int) -> Path:
    """`count` records from the shared corpus' 5,000 LoC records, repeated as needed.

    The corpus holds about 7,600 clean bibliographic records across its files, fewer than the
    20,000 the distributed test loads, and none may be invented. So the LoC file's records are
    used as they are, then again with REPEAT_SUFFIX appended to their 001 (nothing else
    changed), which makes each repeat a distinct record key (003:001).
    """
    source = quick_file()
    if source is None:
        pytest.skip("shared corpus' LoC first5000 file is missing (../shared/corpus)")
    originals: list[pymarc.Record] = []
    with source.open("rb") as fh:
        reader = pymarc.MARCReader(fh, to_unicode=True, permissive=True, force_utf8=True)
        originals = [record for record in reader if record is not None and record["001"]]
    dest.parent.mkdir(parents=True, exist_ok=True)
    keys: set[str] = set()
    with dest.open("wb") as out:
        for n in range(count):
            record = originals[n % len(originals)]
            k = n // len(originals)
            control = record["001"]
            original = control.data or ""
            if k:
                control.data = original.rstrip() + REPEAT_SUFFIX.format(k=k)
            keys.add(control.data or "")
            out.write(record.as_marc())
            control.data = original
    assert len(keys) == count, "the file's 001s must be distinct"
    return dest


def peak_writes_per_second(ils: EmulatorControl, window: int = 10) -> float:
    """The ILS's busiest `window` seconds of applied writes (its own clock), per second.

    Writes are stamped when the emulator applied them, after queueing: a stall of a few tens
    of milliseconds on a loaded host moves a second's last writes into the next one (213 in
    one calendar second was seen at 200/s with requests sent 5 ms apart and no 429, and 203/s
    over five seconds). Over ten seconds that shift is a small part of the count, while a
    client that let its workers send faster than the rate would still show it in full.
    """
    per_second = Counter(int(datetime.fromisoformat(w["at"]).timestamp()) for w in ils.writes())
    if not per_second:
        return 0.0
    first, last = min(per_second), max(per_second)
    busiest = max(
        sum(per_second.get(s, 0) for s in range(start, start + window))
        for start in range(first, max(first, last - window + 1) + 1)
    )
    return busiest / window
