"""One pass over a whole vendor file: every record prepared, counted, and rejects written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]
from pydantic import Field

from catalog_sync.bibframe import (
    BibframeFileError,
    BibframeMappingError,
    instance_to_marc,
    iter_instance_descriptions,
)
from catalog_sync.config import VendorConfig
from catalog_sync.marc.errors import CatalogSyncInputError
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, Rejection, prepare_converted, prepare_record
from catalog_sync.marc.reader import RawRecord, iter_chunk
from catalog_sync.marc.rejects import RejectWriter, index_path_for
from catalog_sync.marc.split import split_file
from catalog_sync.models import LandingFile, Payload, RecordFormat

# Chunking only bounds memory here (one process reads the file front to back).
_SCAN_CHUNK_RECORDS = 5000

# Called for each accepted record; returns a rejection reason when the caller cannot use it
# (normalize: a record too long for ISO 2709), else None.
AcceptedSink = Callable[[PreparedRecord, RawRecord], str | None]


class FileError(Payload):
    """Why a file as a whole could not be read as records."""

    reason: str
    detail: str


class FileScanReport(Payload):
    """What one pass over a file found; records_total = accepted + rejected, always."""

    file: str
    path: str
    sha256: str = ""
    format: RecordFormat | None = None
    records_total: int = 0
    accepted: int = 0
    rejected: int = 0
    deleted: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    warnings: dict[str, int] = Field(default_factory=dict)
    rejects_path: str | None = None
    rejects_index_path: str | None = None
    file_error: FileError | None = None


def scan_file(
    path: Path,
    vendor: VendorConfig,
    rejects_path: Path | None = None,
    accept: AcceptedSink | None = None,
    allow_utf8_repair: bool | None = None,
    limit: int | None = None,
) -> FileScanReport:
    """Prepare every record of `path` (at most `limit`), streaming, chunk by chunk.

    Raises OSError when the path cannot be read. A file that is empty or not MARC gives a
    report with `file_error` set and no records.
    """
    try:
        landing = describe_landing(path, vendor.name)
    except CatalogSyncInputError as exc:
        return FileScanReport(
            file=path.name, path=str(path), file_error=FileError(reason=exc.reason, detail=str(exc))
        )
    reasons: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    total = accepted = deleted = 0
    writer = RejectWriter(rejects_path) if rejects_path is not None else None
    file_error: FileError | None = None
    try:
        for raw, chunk_id, outcome in iter_outcomes(landing, vendor, allow_utf8_repair, limit):
            total += 1
            if isinstance(outcome, PreparedRecord) and accept is not None:
                refused = accept(outcome, raw)
                if refused is not None:
                    outcome = Rejection(
                        refused, "accepted record cannot be written", outcome.control_number
                    )
            if isinstance(outcome, Rejection):
                reasons[outcome.reason] += 1
                if writer is not None:
                    writer.add(raw, outcome, chunk_id)
                continue
            accepted += 1
            deleted += outcome.deleted
            warnings.update(outcome.warnings)
    except BibframeFileError as exc:
        file_error = FileError(reason=exc.reason, detail=str(exc))  # it names the file
    except etree.XMLSyntaxError as exc:
        # BIBFRAME is read as one RDF/XML document: a syntax error ends the file there.
        detail = f"{landing.name}: RDF/XML stops being well-formed: {exc.msg}"
        file_error = FileError(reason="xml_malformed", detail=detail)
    finally:
        if writer is not None:
            writer.close()
    wrote_rejects = writer is not None and writer.count > 0
    return FileScanReport(
        file=landing.name,
        path=landing.path,
        sha256=landing.sha256,
        format=landing.format,
        records_total=total,
        accepted=accepted,
        rejected=total - accepted,
        deleted=deleted,
        reasons=dict(sorted(reasons.items())),
        warnings=dict(sorted(warnings.items())),
        rejects_path=str(rejects_path) if wrote_rejects and rejects_path else None,
        rejects_index_path=str(index_path_for(rejects_path))
        if wrote_rejects and rejects_path
        else None,
        file_error=file_error,
    )


Outcome = tuple[RawRecord, str, PreparedRecord | Rejection]


def iter_outcomes(
    landing: LandingFile,
    vendor: VendorConfig,
    allow_utf8_repair: bool | None = None,
    limit: int | None = None,
) -> Iterator[Outcome]:
    """(raw record, chunk id, PreparedRecord or Rejection) for each record, in file order."""
    if landing.format == "bibframe":
        yield from _bibframe_outcomes(landing, vendor, limit)
        return
    seen = 0
    for ref in split_file(landing, records_per_chunk=_SCAN_CHUNK_RECORDS):
        for raw in iter_chunk(ref):
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield raw, ref.chunk_id, prepare_record(raw, landing.format, vendor, allow_utf8_repair)


def _bibframe_outcomes(
    landing: LandingFile, vendor: VendorConfig, limit: int | None
) -> Iterator[Outcome]:
    """BIBFRAME Instances mapped to MARC, then validated like any record.

    An Instance has no byte range of its own in an RDF/XML graph: its raw record is the
    serialized Instance element and its offset is -1.
    """
    for n, desc in enumerate(iter_instance_descriptions(Path(landing.path))):
        if limit is not None and n >= limit:
            return
        raw = RawRecord(offset=-1, data=etree.tostring(desc.instance), ordinal=n)
        try:
            record = instance_to_marc(desc)
        except BibframeMappingError as exc:
            yield raw, "", Rejection(exc.reason, exc.detail)
            continue
        yield raw, "", prepare_converted(record, vendor)
