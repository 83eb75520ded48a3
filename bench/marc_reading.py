"""Records accepted, repaired and rejected per file of the shared corpus (docs/marc-reading.md).

    python bench/marc_reading.py [--out FILE.json] [--vendor NAME]

Every file under ../shared/corpus that sniffs as ISO 2709 or MARCXML is read with `scan_file`
(the code behind `catalog-sync validate`); BIBFRAME, compressed, non-MARC files and the XSL
stylesheets (their templates hold MARCXML fragments) are skipped. "repaired" counts accepted
records that carry a repair warning (a record that strict reading would have rejected).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from catalog_sync.config import SourceConfig, VendorConfig, load_vendors
from catalog_sync.marc import reasons
from catalog_sync.marc.errors import CatalogSyncInputError
from catalog_sync.marc.filescan import scan_file
from catalog_sync.marc.prepare import PreparedRecord
from catalog_sync.marc.reader import RawRecord
from catalog_sync.marc.sniff import detect_format

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import shared_dir

# Warnings that mean bytes were changed to keep the record (absent on main: counted as 0 there).
_REPAIRS = frozenset(getattr(reasons, "REPAIR_WARNINGS", ()))


def _vendor(name: str | None) -> VendorConfig:
    if name:
        return load_vendors()[name]
    return VendorConfig(name="cli", source=SourceConfig(inbox="."))


def measure(root: Path, vendor: VendorConfig) -> dict[str, dict[str, object]]:
    """file (relative to root) -> total, accepted, repaired, rejected, reasons."""
    out: dict[str, dict[str, object]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".xsl":
            continue
        try:
            if detect_format(path) not in ("iso2709", "marcxml"):
                continue
        except CatalogSyncInputError:
            continue
        repaired = 0

        def count(prepared: PreparedRecord, raw: RawRecord) -> None:
            nonlocal repaired
            repaired += bool(_REPAIRS.intersection(prepared.warnings))

        report = scan_file(path, vendor, accept=count)
        out[str(path.relative_to(root))] = {
            "total": report.records_total,
            "accepted": report.accepted,
            "repaired": repaired,
            "rejected": report.rejected,
            "reasons": report.reasons,
        }
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--vendor")
    args = parser.parse_args(argv)
    root = shared_dir() / "corpus"
    if not root.is_dir():
        print(f"marc_reading: skipped: {root} is absent")
        return 0
    result = measure(root, _vendor(args.vendor))
    totals: Counter[str] = Counter()
    for row in result.values():
        for key in ("total", "accepted", "repaired", "rejected"):
            totals[key] += int(row[key])  # type: ignore[call-overload]
    if args.out:
        args.out.write_text(json.dumps({"files": result, "totals": totals}, indent=1) + "\n")
    print(json.dumps(dict(totals)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
