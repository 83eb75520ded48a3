"""Payloads that cross a task boundary: references and counts only, never record content."""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RecordFormat = Literal["iso2709", "marcxml", "bibframe"]


class Payload(BaseModel):
    """Base for task payloads: immutable, strict about unknown keys, JSON-serialisable for XCom."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LandingFile(Payload):
    """A vendor delivery copied into the landing area under its content hash."""

    vendor: str
    name: str = Field(description="File name as the vendor delivered it")
    path: str = Field(
        description="Run storage key of the immutable landing copy (landing/<vendor>/<sha256>/"
        "<name>), resolved to a local copy on each worker; a local path when used outside a DAG"
    )
    sha256: str
    size: int
    format: RecordFormat
    content_sha256: str = Field(
        default="", description="sha256 of the file at `path` when it is not the delivery itself"
    )
    # A BIBFRAME delivery is landed converted to MARCXML; what could not be mapped is counted.
    converted_from: RecordFormat | None = None
    conversion_rejected: int = 0
    conversion_reasons: dict[str, int] = Field(default_factory=dict)

    @property
    def verify_sha256(self) -> str:
        """What a copy of the file at `path` must hash to."""
        return self.content_sha256 or self.sha256


class ChunkRef(Payload):
    """A deterministic byte range of one landing file; the unit of dynamic task mapping.

    The id depends only on the file's content hash and the byte range, never on a map index,
    so a re-run of the same file produces the same chunks with the same ids.
    """

    chunk_id: str
    vendor: str
    file_name: str
    file_path: str = Field(description="Run storage key (or local path) of the landing file")
    file_sha256: str
    format: RecordFormat
    start: int = Field(ge=0, description="Byte offset of the chunk's first record")
    end: int = Field(ge=0, description="Byte offset just past the chunk's last record")
    first_record: int = Field(ge=0, description="0-based ordinal of the first record in the file")
    record_count: int = Field(ge=0)
    content_sha256: str = Field(
        default="", description="sha256 of the file at `file_path` when it is not the delivery"
    )

    @property
    def verify_sha256(self) -> str:
        """What a copy of the landing file must hash to."""
        return self.content_sha256 or self.file_sha256

    @property
    def label(self) -> str:
        """What an operator reads in the Airflow UI: file and 1-based record range."""
        first = self.first_record + 1
        last = self.first_record + self.record_count
        return f"{self.file_name} records {first:,}\u2013{last:,}"


def chunk_id_for(file_sha256: str, start: int, end: int) -> str:
    """Chunk id from content hash and byte range (stable across runs, workers and retries)."""
    return hashlib.sha256(f"{file_sha256}:{start}:{end}".encode()).hexdigest()[:20]


class ChangeAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


class RequestKind(StrEnum):
    """The record work an ILS request served (catalog_sync.ils.requestcount)."""

    CREATE = "create"  # match searches (prefetch included), stamp recovery look-ups, the POST
    UPDATE = "update"  # the read of the ILS copy for the diff and drift check, the PUT
    DELETE = "delete"
    ITEM = "item"  # item list, barcode look-ups and item writes
    SHARED = "shared"  # what serves every record: login tokens


class StagedChange(Payload):
    """One record's decided change, as written to the staging store (JSON lines per chunk).

    It holds no record content to write: commit_chunk re-reads the record from the landing file
    at `offset` (and checks it is the one staged), so values the ILS gets never rest in staging.
    A create also carries its standard numbers as catalogued (`number_sources`), so that the
    commit can batch its match searches without reading and preparing every create again.
    """

    record_key: str
    action: ChangeAction
    fingerprint: str
    offset: int
    length: int
    correlation_id: str
    ils_id: str | None = None
    previous_fingerprint: str | None = Field(
        default=None, description="What was applied before (part of the idempotency key)"
    )
    number_sources: dict[str, list[str]] | None = Field(
        default=None,
        description="A create's standard numbers as catalogued, by tag (identifiers."
        "number_sources: 035/020/022/010 $a and the 001), all of them whatever the vendor's"
        " match points; the commit normalises them and applies the points. Public"
        " identifiers, staged only when the PII policy masks none of their fields (the 001 is a"
        " control field, which no policy rule masks). None: not staged (not a create, a policy"
        " masking one of those fields, or a staging file older than this field): the commit"
        " then reads the record for them",
    )


class ChunkReport(Payload):
    """What process_chunk did with one chunk (counts and run storage keys; goes through XCom)."""

    chunk: ChunkRef
    records_total: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: dict[str, int] = Field(default_factory=dict)
    warnings: dict[str, int] = Field(default_factory=dict)
    creates: int = 0
    updates: int = 0
    deletes: int = 0
    unchanged: int = 0
    staging_path: str = ""
    rejects_path: str = ""
    masking: dict[str, int] = Field(
        default_factory=dict, description="policy rule -> values masked"
    )

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id

    @property
    def label(self) -> str:
        return self.chunk.label


class CommitReport(Payload):
    """What commit_chunk wrote to the ILS for one chunk (counts; goes through XCom)."""

    chunk_id: str
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    already_applied: int = Field(
        default=0,
        description="Of created/updated/deleted, records an earlier try had already written "
        "(acknowledged in the ledger, not sent again); counted there as what they were",
    )
    failed: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    matched: int = Field(default=0, description="New records matched to an existing ILS copy")
    no_change: int = Field(default=0, description="Changed in the file, same in the ILS: not sent")
    drifted: int = Field(default=0, description="ILS copy edited since our last write")
    review: int = Field(default=0, description="Held for review, not written (`held`)")
    reviews: dict[str, int] = Field(default_factory=dict, description="reason -> records")
    items_created: int = Field(default=0, description="ILS items created (apart from records)")
    items_updated: int = Field(default=0, description="ILS items whose properties were replaced")
    items_deleted: int = Field(default=0, description="ILS items deleted with their biblio")
    requests: dict[RequestKind, dict[str, int]] = Field(
        default_factory=dict,
        description="ILS requests sent for this chunk, by kind of record work then HTTP method; "
        "every attempt counted (retries, re-sends after a 401 and recovery look-ups included)",
    )
    dry_run: bool = False
    diff_path: str = Field(
        default="", description="Run storage key of the masked field-level diffs (JSON lines)"
    )

    @property
    def held(self) -> int:
        """Records held for review: with created, updated, deleted, unchanged and failed, every
        staged record of the chunk once (catalog_sync.pipeline.outcomes)."""
        return self.review


class RunSummary(Payload):
    """The totals of one run; rendered as the `run summary:` line (README.md, "How a run works")."""

    records: int = 0
    accepted: int = 0
    rejected: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    held: int = Field(default=0, description="Held for review, not written")

    @property
    def outcomes(self) -> int:
        """What commit did with the accepted records: `accepted` once every chunk committed."""
        return self.created + self.updated + self.deleted + self.unchanged + self.failed + self.held

    def line(self) -> str:
        pairs = " ".join(f"{k}={v}" for k, v in self.model_dump().items())
        return f"run summary: {pairs}"
