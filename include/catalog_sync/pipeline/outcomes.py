"""What commit_chunk did with each staged record, totalled so every record is counted once.

Each record's commit ends in one result string, "<outcome>" or "<note>:<outcome>" or
"<kind>:<reason>", and lands in exactly one of the six counts of a CommitReport:

  created, updated, deleted   written to the ILS (by this try or, "already_applied:", an
                              earlier one; "matched:" a new record written over its ILS copy)
  unchanged                   nothing to send: unchanged in the file, or changed in the file
                              but the ILS copy already says so ("no_change", "matched:no_change",
                              "drifted:no_change"), or drift left alone ("drift_skipped")
  failed                      "failed:<reason>": refused by the ILS, or a per-record problem
                              on our side (the staged record changed in the landing file)
  held                        "review:<reason>": not written, a person must look at it

matched, no_change, drifted and already_applied explain records within those counts. Items
(created, updated, deleted) are counted apart: a record whose only news is a new item is
"no_change" (its bib is not written) with one item created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from catalog_sync.models import CommitReport

# The ledger's acknowledgement of a record that needed no write (the ILS copy already agreed).
NO_CHANGE_ACK = "unchanged in the ILS"

# A per-record outcome for the next run to see, never a reason to fail the chunk.
STAGED_RECORD_CHANGED = "staged_record_changed"
ILS_RECORD_UNREADABLE = "ils_record_unreadable"


class RecordProblem(RuntimeError):
    """One record cannot be committed as staged; the others of the chunk go on."""

    reason = "record_problem"


class StagedRecordChanged(RecordProblem):
    """The landing file no longer holds the record that was staged (it must be immutable)."""

    reason = STAGED_RECORD_CHANGED


class IlsRecordUnreadable(RecordProblem):
    """The ILS returned a record that is not MARCXML we can read."""

    reason = ILS_RECORD_UNREADABLE


def tally(
    chunk_id: str,
    staged_unchanged: int,
    results: Sequence[str],
    *,
    dry_run: bool,
    diff_path: str,
    items: Counter[str] | None = None,
) -> CommitReport:
    """The CommitReport of one chunk: `staged_unchanged` records never sent, plus `results`."""
    outcomes: Counter[str] = Counter(unchanged=staged_unchanged)
    notes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for result in results:
        kind, _, rest = result.partition(":")
        if kind == "failed":
            failures[rest] += 1
        elif kind == "review":
            reviews[rest] += 1
        elif kind in ("matched", "drifted", "already_applied"):
            notes[kind] += 1
            outcomes[_counted_as(rest)] += 1
            if rest == "no_change":
                notes["no_change"] += 1
        else:
            outcomes[_counted_as(kind)] += 1
            if kind in ("no_change", "drift_skipped"):
                notes[kind] += 1
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
        dry_run=dry_run,
        diff_path=diff_path,
    )


def _counted_as(outcome: str) -> str:
    return "unchanged" if outcome in ("no_change", "drift_skipped") else outcome
