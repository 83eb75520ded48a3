"""`catalog-sync validate` and `catalog-sync normalize`: check or rewrite a vendor file by hand.

Exit codes: 0 the file was read as records (rejections are not errors); 1 the file was read
but holds no MARC records (empty, an image, JSON, ...); 2 the path cannot be read or the
arguments are wrong. A message on stderr says which.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

from pymarc import record_to_xml

from catalog_sync.config import SourceConfig, VendorConfig, load_vendors
from catalog_sync.delivery.safety import printable_name, printable_text
from catalog_sync.marc.filescan import FileScanReport, scan_file
from catalog_sync.marc.prepare import PreparedRecord
from catalog_sync.marc.reader import RawRecord

EXIT_READ = 0
EXIT_NOT_MARC = 1
EXIT_UNREADABLE = 2

_MARCXML_OPEN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="http://www.loc.gov/MARC21/slim">\n'
)
_MARCXML_CLOSE = b"</collection>\n"


class _UsageError(Exception):
    pass


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rejects", type=Path, help="write rejected records here (index beside it)"
    )
    parser.add_argument("--vendor", help="apply this vendor's settings from vendors.yaml")
    parser.add_argument(
        "--allow-utf8-repair",
        action="store_true",
        default=None,
        help="replace invalid UTF-8 with U+FFFD instead of rejecting the record",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="reject records lenient reading repairs (bad indicators); vendor marc_strictness",
    )
    parser.add_argument(
        "--required-fields",
        help="comma-separated tags every record must have (default: the vendor's, else 001,245)",
    )


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage and the problem
        raise _UsageError from exc


def _vendor(args: argparse.Namespace) -> VendorConfig:
    if args.vendor:
        try:
            vendors = load_vendors()
        except (OSError, ValueError) as exc:
            raise _UsageError(f"cannot read vendors.yaml: {exc}") from exc
        if args.vendor not in vendors:
            known = ", ".join(sorted(vendors)) or "none"
            raise _UsageError(f"unknown vendor {args.vendor!r} (known: {known})")
        vendor = vendors[args.vendor]
    else:
        vendor = VendorConfig(name="cli", source=SourceConfig(inbox="."))
    if args.strict:
        vendor = vendor.model_copy(update={"marc_strictness": "strict"})
    if args.required_fields is not None:
        tags = [t.strip() for t in args.required_fields.split(",") if t.strip()]
        vendor = vendor.model_copy(update={"required_fields": tags})
    return vendor


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise OSError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise OSError(f"cannot read {path}: it is a directory")
    if not os.access(path, os.R_OK):
        raise OSError(f"cannot read {path}: permission denied")


def _summary(report: FileScanReport) -> str:
    # The file name is the vendor's, and messages quote it: each line printed stays one
    # inert line whatever it holds (no line breaks or terminal codes of the vendor's).
    name = printable_name(report.file)
    if report.file_error is not None and report.records_total == 0:
        return f"{name}: {printable_text(report.file_error.detail)}"
    lines = [
        f"{name} ({report.format}): {report.records_total:,} records, "
        f"{report.accepted:,} accepted, {report.rejected:,} rejected"
        + (f", {report.deleted:,} deletes" if report.deleted else "")
    ]
    if report.reasons:
        lines.append("  rejected: " + ", ".join(f"{k}={v}" for k, v in report.reasons.items()))
    if report.warnings:
        lines.append("  flagged:  " + ", ".join(f"{k}={v}" for k, v in report.warnings.items()))
    if report.rejects_path:
        lines.append(
            printable_text(f"  rejects:  {report.rejects_path} (index {report.rejects_index_path})")
        )
    if report.file_error is not None:
        lines.append(f"  stopped:  {printable_text(report.file_error.detail)}")
    return "\n".join(lines)


def _exit_code(report: FileScanReport) -> int:
    if report.file_error is not None and report.records_total == 0:
        return EXIT_NOT_MARC
    return EXIT_READ


def _write_report(path: Path | None, report: FileScanReport) -> None:
    if path is not None:
        path.write_text(
            json.dumps(report.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
        )


def _fail(command: str, message: str) -> int:
    print(f"catalog-sync {command}: {printable_text(message)}", file=sys.stderr)
    return EXIT_UNREADABLE


def validate_main(argv: list[str]) -> int:
    """`catalog-sync validate PATH [--report FILE.json] [--rejects FILE]`."""
    parser = argparse.ArgumentParser(
        prog="catalog-sync validate", description="Check a vendor file record by record."
    )
    parser.add_argument("path", type=Path)
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--limit", type=int, help="stop after this many records")
    _common_options(parser)
    try:
        args = _parse(parser, argv)
        vendor = _vendor(args)
        _check_readable(args.path)
        report = scan_file(
            args.path,
            vendor,
            rejects_path=args.rejects,
            allow_utf8_repair=args.allow_utf8_repair,
            limit=args.limit,
        )
        _write_report(args.report, report)
    except _UsageError as exc:
        return EXIT_UNREADABLE if not exc.args else _fail("validate", str(exc))
    except OSError as exc:
        return _fail("validate", str(exc))
    print(_summary(report))
    return _exit_code(report)


class _RecordSink:
    """Writes accepted records to the output as ISO 2709 or MARCXML."""

    def __init__(self, out: BinaryIO, xml: bool) -> None:
        self.out = out
        self.xml = xml

    def __call__(self, prepared: PreparedRecord, raw: RawRecord) -> str | None:
        if self.xml:
            self.out.write(record_to_xml(prepared.record, namespace=False) + b"\n")
            return None
        # prepare_record has refused what ISO 2709 cannot carry (iso2709_overflow), so validate,
        # normalize and the DAG take one decision on every record.
        data = prepared.record.as_marc()
        self.out.write(data)
        return None


def normalize_main(argv: list[str]) -> int:
    """`catalog-sync normalize IN OUT`: accepted records as UTF-8, NFC, leader/09 'a'.

    OUT ending in .mrc gets ISO 2709, .xml a MARCXML collection. OUT is written beside itself
    and renamed when complete, so a failed run never leaves a file that looks whole.
    """
    parser = argparse.ArgumentParser(
        prog="catalog-sync normalize",
        description="Write the accepted records of a vendor file as UTF-8 NFC MARC.",
    )
    parser.add_argument("source", type=Path, metavar="IN")
    parser.add_argument("target", type=Path, metavar="OUT", help="*.mrc (ISO 2709) or *.xml")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    _common_options(parser)
    partial: Path | None = None
    try:
        args = _parse(parser, argv)
        suffix = args.target.suffix.lower()
        if suffix not in (".mrc", ".xml"):
            raise _UsageError(
                f"OUT must end in .mrc (ISO 2709) or .xml (MARCXML), not {args.target.name}"
            )
        vendor = _vendor(args)
        _check_readable(args.source)
        partial = args.target.with_name(f".{args.target.name}.partial")
        with partial.open("wb") as out:
            xml = suffix == ".xml"
            if xml:
                out.write(_MARCXML_OPEN)
            report = scan_file(
                args.source,
                vendor,
                rejects_path=args.rejects,
                accept=_RecordSink(out, xml),
                allow_utf8_repair=args.allow_utf8_repair,
            )
            if xml:
                out.write(_MARCXML_CLOSE)
        if _exit_code(report) != EXIT_READ:
            print(_summary(report), file=sys.stderr)
            return EXIT_NOT_MARC
        partial.replace(args.target)
        _write_report(args.report, report)
    except _UsageError as exc:
        return EXIT_UNREADABLE if not exc.args else _fail("normalize", str(exc))
    except OSError as exc:
        return _fail("normalize", str(exc))
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    written = printable_text(f"  written:  {args.target} ({report.accepted:,} records)")
    print(_summary(report) + "\n" + written)
    return EXIT_READ
