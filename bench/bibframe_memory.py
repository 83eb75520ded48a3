"""Peak memory of converting BIBFRAME RDF/XML by the order of its Works and Instances.

Builds files of about --mb MB from copies of the LoC regression record (each copy under its
own URIs, the record itself unchanged) in four orders, then converts each with
convert_bibframe in a fresh interpreter and reports the growth of peak RSS (VmHWM, reset
after a warm-up) and the wall time. A figure, not a test limit: see bench/README.md.

    .venv/bin/python bench/bibframe_memory.py --mb 29
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "tests" / "fixtures" / "bibframe" / "regression-bibframe.xml"
ORDERS = ("interleaved", "instance-then-work", "instances-first", "works-first")

_MEASURE = """
import json, sys
from pathlib import Path
from catalog_sync.bibframe import convert_bibframe

def status_kib(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)

src, warmup, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
convert_bibframe(warmup, out)  # imports and parser set-up are not growth
before = status_kib("VmRSS")
Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
report = convert_bibframe(src, out)
peak = status_kib("VmHWM")
print(json.dumps({"converted": report.converted, "growth_mib": (peak - before) / 1024,
                  "peak_mib": peak / 1024}))
"""


def build(dest: Path, order: str, target_bytes: int) -> int:
    """Write copies of the record until the file reaches target_bytes; returns the copy count."""
    root = etree.parse(str(RECORD)).getroot()
    work, instance = (etree.tostring(c) for c in root if isinstance(c.tag, str))
    copies = max(1, target_bytes // (len(work) + len(instance)))

    def own(node: bytes, i: int) -> bytes:
        return node.replace(b"13600108#", f"13600108-{i}#".encode())

    head = etree.tostring(root).split(b">", 1)[0] + b">"
    with dest.open("wb") as out:
        out.write(head)
        if order == "interleaved":
            for i in range(copies):
                out.write(own(work, i) + own(instance, i))
        elif order == "instance-then-work":  # as id.loc.gov writes one record
            for i in range(copies):
                out.write(own(instance, i) + own(work, i))
        else:
            first, second = (instance, work) if order == "instances-first" else (work, instance)
            for node in (first, second):
                for i in range(copies):
                    out.write(own(node, i))
        out.write(b"</rdf:RDF>")
    return copies


def measure(src: Path, scratch: Path) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(src), str(RECORD), str(scratch / "out.xml")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=29.0)
    parser.add_argument("--orders", nargs="*", default=list(ORDERS), choices=ORDERS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bf-mem-") as tmp:
        scratch = Path(tmp)
        for order in args.orders:
            src = scratch / f"{order}.rdf"
            copies = build(src, order, int(args.mb * 1024 * 1024))
            result = measure(src, scratch)
            size = src.stat().st_size / 1024 / 1024
            print(
                f"{order:20} {size:5.1f} MB {copies:5d} records"
                f"  converted {result['converted']:5.0f}"
                f"  peak growth {result['growth_mib']:6.1f} MiB  peak RSS {result['peak_mib']:6.1f}"
                f" MiB  {result['seconds']:5.1f} s",
                flush=True,
            )
            src.unlink()


if __name__ == "__main__":
    main()
