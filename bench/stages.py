"""Per-core throughput of each process_chunk stage next to bare pymarc iteration, on one file.

Runs in the project venv or in a throwaway venv of another Python (PYTHONPATH=include), so it
needs only pymarc; without an importable catalog_sync (Python < 3.11) it measures pymarc alone.
Prints one JSON object. Examples:

    .venv/bin/python bench/stages.py FILE.mrc --reps 3
    .venv/bin/python bench/stages.py FILE.mrc --stages pymarc,cpu_stage --gc freeze
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymarc

ALL_STAGES = (
    "pymarc",
    "frame",
    "parse",
    "validate",
    "prepare",
    "mask",
    "fingerprint",
    "diff",
    "cpu_stage",
    "process_chunk",
)
# The field-level diff commit_chunk runs (issue 5); absent in the other Pythons' venvs.
DIFF_MODULE, DIFF_FUNCTION = "catalog_sync.changes.recordiff", "diff_records"
# gc modes compared by run.py; "freeze_threshold" is what catalog_sync.gctuning applies.
GC_MODES = ("default", "freeze", "threshold", "freeze_threshold", "disabled")


def apply_gc_mode(mode: str) -> None:
    """Set the collector as a task would at start-up, after imports and before the records."""
    if mode == "default":
        return
    if mode == "disabled":  # reference point only: no production task runs without a collector
        gc.disable()
        return
    try:
        from catalog_sync.gctuning import tune_gc
    except ImportError:  # another Python's venv without catalog_sync: same calls by hand
        if "threshold" in mode:
            gc.set_threshold(50_000, 20, 20)
        if "freeze" in mode:
            gc.freeze()
        return
    tune_gc(freeze="freeze" in mode, threshold="threshold" in mode)


def _reset_gc(defaults: tuple[int, int, int]) -> None:
    gc.unfreeze()
    gc.set_threshold(*defaults)
    gc.enable()
    gc.collect()


def compare_gc(path: Path, stages: list[str], reps: int, modes: list[str]) -> dict[str, Any]:
    """Each gc mode against the others in interleaved rounds, in one process.

    The machine's load drifts over seconds, so modes measured minutes apart in separate
    processes differ by more than the collector does; alternating them inside each round, in
    a rotating order, and keeping each one's best puts them under the same load.
    """
    single = measure(path, ["pymarc"], 1, "default")  # record count and import warm-up
    n = single["records"]
    data = path.read_bytes()
    cases: dict[str, Callable[[], None]] = {"pymarc": _pymarc_case(data)}
    notes: dict[str, str] = {}
    cases.update(_catalog_cases(path, stages, notes))
    cases = {k: v for k, v in cases.items() if k in stages}
    defaults = gc.get_threshold()
    for fn in cases.values():
        fn()
    best = {(m, s): float("inf") for m in modes for s in cases}
    cpu = dict(best)
    # Time inside the collector itself, from gc.callbacks: unlike wall time it hardly moves
    # with the machine's load, so it shows what a setting can save at most.
    in_gc = {key: 0.0 for key in best}
    collections = {key: 0 for key in best}
    started = [0.0]
    current: list[tuple[str, str]] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif current:
            in_gc[current[0]] += time.perf_counter() - started[0]
            collections[current[0]] += 1

    gc.callbacks.append(on_gc)
    for round_no in range(reps):
        # Each round starts with another mode: a mode's position in the round must not
        # decide its result (a fixed order once favoured whichever ran last).
        shift = round_no % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            apply_gc_mode(mode)
            for stage, fn in cases.items():
                current[:] = [(mode, stage)]
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                best[mode, stage] = min(best[mode, stage], time.perf_counter() - t0)
                cpu[mode, stage] = min(cpu[mode, stage], time.process_time() - c0)
                current.clear()
            _reset_gc(defaults)
    gc.callbacks.remove(on_gc)
    out: dict[str, Any] = {"python": platform.python_version(), "records": n, "reps": reps}
    out["modes"] = {
        mode: {
            stage: {
                "seconds": round(best[mode, stage], 4),
                "records_per_s": round(n / best[mode, stage], 1),
                "vs_default": round(best["default", stage] / best[mode, stage] - 1, 4)
                if "default" in modes
                else None,
                "cpu_seconds": round(cpu[mode, stage], 4),
                "gc_seconds_per_run": round(in_gc[mode, stage] / reps, 4),
                "gc_share": round(in_gc[mode, stage] / reps / cpu[mode, stage], 4),
                "collections_per_run": collections[mode, stage] / reps,
            }
            for stage in cases
        }
        for mode in modes
    }
    return out


def _pymarc_case(data: bytes) -> Callable[[], None]:
    def pymarc_iter() -> None:
        reader = pymarc.MARCReader(
            io.BytesIO(data), to_unicode=True, permissive=True, hide_utf8_warnings=True
        )
        for _ in reader:
            pass

    return pymarc_iter


def _best_of(cases: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    """Best time per case, interleaved rounds (ingest_bench's helper when catalog_sync loads)."""
    try:
        from ingest_bench import _interleaved
    except ImportError:  # pymarc-only Python: catalog_sync (and so ingest_bench) won't import
        best = dict.fromkeys(cases, float("inf"))
        for _ in range(reps + 1):
            for name, fn in cases.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        return best
    return _interleaved(cases, reps)


def find_diff() -> tuple[str, Callable[[Any, Any], Any]] | None:
    """The project's field-level diff function, where catalog_sync is importable."""
    try:
        module = importlib.import_module(DIFF_MODULE)
    except ImportError:
        return None
    fn: Callable[[Any, Any], Any] = getattr(module, DIFF_FUNCTION)
    return f"{DIFF_MODULE}.{DIFF_FUNCTION}", fn


def measure(path: Path, stages: list[str], reps: int, gc_mode: str) -> dict[str, Any]:
    """Seconds and records/s for each requested stage over every record of `path`."""
    data = path.read_bytes()
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "file": path.name,
        "bytes": len(data),
        "gc_mode": gc_mode,
        "reps": reps,
        "stages": {},
    }

    cases: dict[str, Callable[[], None]] = {"pymarc": _pymarc_case(data)}
    notes: dict[str, str] = {}
    if sys.version_info < (3, 11):  # noqa: UP036 - this script also runs under older Pythons
        notes["catalog_sync"] = (
            f"pymarc only: catalog_sync needs Python >= 3.11 (requires-python), "
            f"and its pinned dependencies do not install on {platform.python_version()}"
        )
    elif len(stages) > 1 or stages != ["pymarc"]:
        try:
            cases.update(_catalog_cases(path, stages, notes))
        except ImportError as exc:
            notes["catalog_sync"] = f"not importable on {platform.python_version()}: {exc}"
    n = sum(1 for _ in pymarc.MARCReader(io.BytesIO(data), permissive=True, to_unicode=True))
    out["records"] = n
    wanted = {k: v for k, v in cases.items() if k in stages}
    apply_gc_mode(gc_mode)
    best = _best_of(wanted, reps)
    gc.enable()
    base = n / best["pymarc"] if "pymarc" in best else None
    for stage in stages:
        if stage in best:
            rate = n / best[stage]
            out["stages"][stage] = {
                "status": "measured",
                "seconds": round(best[stage], 4),
                "records_per_s": round(rate, 1),
                "us_per_record": round(best[stage] / n * 1e6, 2),
                "ratio_to_pymarc": round(rate / base, 3) if base else None,
            }
        else:
            out["stages"][stage] = {"status": "pending" if stage == "diff" else "unavailable"}
        if stage in notes:
            out["stages"][stage]["note"] = notes[stage]
    if "catalog_sync" in notes:
        out["note"] = notes["catalog_sync"]
    return out


def _catalog_cases(
    path: Path, stages: list[str], notes: dict[str, str]
) -> dict[str, Callable[[], None]]:
    """The project's own functions, each over every record, prepared inputs made beforehand."""
    from catalog_sync.changes.fingerprint import record_fingerprint, record_key
    from catalog_sync.config import SourceConfig, VendorConfig
    from catalog_sync.marc.iso2709 import frame_fields
    from catalog_sync.marc.landing import describe_landing
    from catalog_sync.marc.prepare import PreparedRecord, prepare_record
    from catalog_sync.marc.reader import iter_chunk
    from catalog_sync.marc.rules import (
        check_control_field,
        check_data_field,
        format_kind,
        missing_required,
    )
    from catalog_sync.marc.split import split_file
    from catalog_sync.privacy import Masker, load_policy

    vendor = VendorConfig(name="bench", source=SourceConfig(inbox="bench"))
    landing = describe_landing(path, vendor="bench")
    refs = split_file(landing, records_per_chunk=vendor.records_per_chunk)
    fmt = landing.format
    # Inputs are built only for the stages asked for: a list of parsed records held in memory
    # would make every full collection slower and skew the gc comparison.
    need_prepared = bool({"validate", "mask", "fingerprint", "diff"} & set(stages))
    need_raws = need_prepared or bool({"parse", "prepare", "cpu_stage"} & set(stages))
    raws = [raw for ref in refs for raw in iter_chunk(ref)] if need_raws else []
    results = [prepare_record(raw, fmt, vendor) for raw in raws] if need_prepared else []
    prepared = [r.record for r in results if isinstance(r, PreparedRecord)]
    del results
    masker = Masker(load_policy(), secrets.token_bytes(32))  # throwaway key
    key_fields = vendor.record_key
    required = vendor.required_fields

    def frame() -> None:
        for ref in refs:
            for _ in iter_chunk(ref):
                pass

    def parse() -> None:
        for raw in raws:
            frame_fields(raw.data)

    def validate() -> None:
        # The MARC 21 rule checks prepare_record applies, on already-parsed fields.
        for record in prepared:
            leader = str(record.leader)
            kind = format_kind(leader)
            for f in record.fields:
                if f.control_field:
                    check_control_field(kind, f.tag, f.data or "")
                else:
                    codes = "".join([s.code for s in f.subfields])
                    check_data_field(kind, f.tag, f.indicator1, f.indicator2, codes)
            missing_required(kind, required, {f.tag for f in record.fields})

    def prepare() -> None:
        for raw in raws:
            prepare_record(raw, fmt, vendor)

    def mask() -> None:
        for record in prepared:
            masker.mask_record(record)

    def fingerprint() -> None:
        for record in prepared:
            record_key(record, key_fields)
            record_fingerprint(record)

    def cpu_stage() -> None:
        # process_chunk's per-record CPU path without its file and database I/O.
        for raw in raws:
            result = prepare_record(raw, fmt, vendor)
            if isinstance(result, PreparedRecord):
                record_key(result.record, key_fields)
                record_fingerprint(result.record)

    cases: dict[str, Callable[[], None]] = {
        "frame": frame,
        "parse": parse,
        "validate": validate,
        "prepare": prepare,
        "mask": mask,
        "fingerprint": fingerprint,
        "cpu_stage": cpu_stage,
    }
    diff = find_diff() if "diff" in stages else None
    if diff is None:
        notes["diff"] = "no field-level diff module in catalog_sync yet (issue 5)"
    else:
        name, fn = diff
        notes["diff"] = f"{name}(ILS copy, incoming) on every record"
        ils_copies = [r.record for r in (prepare_record(raw, fmt, vendor) for raw in raws)
                      if isinstance(r, PreparedRecord)]  # fmt: skip

        def diff_all() -> None:
            for old, new in zip(ils_copies, prepared, strict=True):
                fn(old, new)

        cases["diff"] = diff_all
    if "process_chunk" in stages:
        try:
            cases["process_chunk"] = _process_chunk_case(refs, vendor)
            notes["process_chunk"] = (
                "real process_chunk per chunk: framing, prepare, key, fingerprint, one state "
                "lookup per chunk (SQLite, empty: all creates), staging JSONL written"
            )
        except ImportError as exc:
            notes["process_chunk"] = f"state store not importable here: {exc}"
    return cases


def _process_chunk_case(refs: list[Any], vendor: Any) -> Callable[[], None]:
    from catalog_sync.changes.state import StateStore
    from catalog_sync.paths import RuntimeLayout
    from catalog_sync.pipeline.process import process_chunk

    root = Path(tempfile.mkdtemp(prefix="stage-bench-"))
    layout = RuntimeLayout(root)
    state = StateStore(f"sqlite:///{root / 'state.db'}")

    def run() -> None:
        for ref in refs:
            process_chunk(ref, vendor, layout, state, "bench-run")

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("file", type=Path)
    ap.add_argument("--stages", default=",".join(ALL_STAGES))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gc", default="default", choices=GC_MODES)
    ap.add_argument("--gc-compare", help="comma-separated gc modes, interleaved in one process")
    args = ap.parse_args(argv)
    if not args.file.is_file():
        print(f"stages: {args.file} not found", file=sys.stderr)
        return 2
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(ALL_STAGES)
    if unknown:
        print(f"stages: unknown stage(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    if args.gc_compare:
        modes = [m for m in args.gc_compare.split(",") if m]
        if set(modes) - set(GC_MODES):
            print(f"stages: gc modes are {GC_MODES}", file=sys.stderr)
            return 2
        print(json.dumps(compare_gc(args.file, stages, args.reps, modes)))
        return 0
    print(json.dumps(measure(args.file, stages, args.reps, args.gc)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
