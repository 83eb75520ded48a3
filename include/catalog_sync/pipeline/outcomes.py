"""What commit_chunk did with each staged record, totalled so every record is counted once.

Each record's commit ends in one Outcome (a Result, a reason for failed/review/lease, and
a Note on how), and lands in exactly one of the six counts of a CommitReport:

  created, updated, deleted   written to the ILS (by this try or, Note.ALREADY_APPLIED, an
                              earlier one; Note.MATCHED: a new record written over its ILS copy)
  unchanged                   nothing to send: unchanged in the file, or changed in the file
                              but the ILS copy already says so (Result.NO_CHANGE, with or
                              without a note), or drift left alone (Result.DRIFT_SKIPPED)
  failed                      Result.FAILED + reason: refused by the ILS, or a per-record
                              problem on our side (the staged record changed in the landing file)
  held                        Result.REVIEW + reason: not written, a person must look at it

Result.LEASE (the record's lease was lost or busy) is never counted: the chunk fails for its
retry to write the record.

matched, no_change, drifted and already_applied explain records within those counts. Items
(created, updated, deleted) are counted apart: a record whose only news is a new item is
"no_change" (its bib is not written) with one item created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from catalog_sync.models import CommitReport, RequestKind

# The ledger's acknowledgement of a record that needed no write (the ILS copy already agreed).
NO_CHANGE_ACK = "unchanged in the ILS"

# A per-record outcome for the next run to see, never a reason to fail the chunk.
STAGED_RECORD_CHANGED = "staged_record_changed"
ILS_RECORD_UNREADABLE = "ils_record_unreadable"
PAYLOAD_NOT_XML = "payload_not_xml"


class Result(StrEnum):
    """What happened to one staged record."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    NO_CHANGE = "no_change"  # changed in the file, but the ILS copy already says so
    DRIFT_SKIPPED = "drift_skipped"  # the ILS copy drifted; the vendor's policy is to skip
    FAILED = "failed"
    REVIEW = "review"
    LEASE = "lease"  # not written: its lease was lost or busy


class Note(StrEnum):
    """How a result came about, reported within its count."""

    MATCHED = "matched"  # a new record found in the ILS by a match point
    DRIFTED = "drifted"  # the ILS copy had changed since our last write (overlay policy)
    ALREADY_APPLIED = "already_applied"  # an earlier try wrote and acknowledged it


# Results that count as "unchanged" in the CommitReport.
_UNCHANGED = (Result.UNCHANGED, Result.NO_CHANGE, Result.DRIFT_SKIPPED)


@dataclass(frozen=True)
class Outcome:
    """One record's commit: its result, why (failed, review, lease) and how (a note)."""

    result: Result
    reason: str | None = None
    note: Note | None = None

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(Result.FAILED, reason)

    @classmethod
    def review(cls, reason: str) -> Outcome:
        return cls(Result.REVIEW, reason)

    @classmethod
    def lease(cls, reason: str) -> Outcome:
        return cls(Result.LEASE, reason)

    def __str__(self) -> str:
        # For logs: "matched:updated", "review:drift", "created".
        if self.reason is not None:
            return f"{self.result}:{self.reason}"
        return f"{self.note}:{self.result}" if self.note is not None else str(self.result)


class RecordProblem(RuntimeError):
    """One record cannot be committed as staged; the others of the chunk go on."""

    reason = "record_problem"


class StagedRecordChanged(RecordProblem):
    """The landing file no longer holds the record that was staged (it must be immutable)."""

    reason = STAGED_RECORD_CHANGED


class PayloadNotXml(RecordProblem):
    """The record's MARCXML is not well-formed: it holds a character XML cannot carry."""

    reason = PAYLOAD_NOT_XML


class IlsRecordUnreadable(RecordProblem):
    """The ILS returned a record that is not MARCXML we can read."""

    reason = ILS_RECORD_UNREADABLE


def tally(
    chunk_id: str,
    staged_unchanged: int,
    results: Sequence[Outcome],
    *,
    dry_run: bool,
    diff_path: str,
    items: Counter[str] | None = None,
    requests: dict[RequestKind, dict[str, int]] | None = None,
) -> CommitReport:
    """The CommitReport of one chunk: `staged_unchanged` records never sent, plus `results`."""
    outcomes: Counter[str] = Counter(unchanged=staged_unchanged)
    notes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for outcome in results:
        result = outcome.result
        if result is Result.FAILED:
            failures[outcome.reason or ""] += 1
            continue
        if result is Result.REVIEW:
            reviews[outcome.reason or ""] += 1
            continue
        outcomes["unchanged" if result in _UNCHANGED else result.value] += 1
        if outcome.note is not None:
            notes[outcome.note] += 1
        if result in (Result.NO_CHANGE, Result.DRIFT_SKIPPED):
            notes[result] += 1
    unknown = set(outcomes) - {"created", "updated", "deleted", "unchanged"}
    assert not unknown, f"commit results outside the six counts: {unknown}"
    return CommitReport(
        chunk_id=chunk_id,
        created=outcomes["created"],
        updated=outcomes["updated"],
        deleted=outcomes["deleted"],
        unchanged=outcomes["unchanged"],
        already_applied=notes["already_applied"],
        failed=sum(failures.values()),
        failures=dict(failures),
        matched=notes["matched"],
        no_change=notes["no_change"],
        drifted=notes["drifted"] + notes["drift_skipped"] + reviews["drift"],
        review=sum(reviews.values()),
        reviews=dict(reviews),
        items_created=(items or Counter())["created"],
        items_updated=(items or Counter())["updated"],
        items_deleted=(items or Counter())["deleted"],
        requests=requests or {},
        dry_run=dry_run,
        diff_path=diff_path,
    )
