"""The state store remembers what was applied; decide() turns that into create/update/unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog_sync.changes.state import StateStore, idempotency_key
from catalog_sync.models import ChangeAction
from catalog_sync.pipeline.process import decide


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.parametrize(
    ("deleted", "fp", "previous", "previously_deleted", "expected"),
    [
        (False, "a", None, False, ChangeAction.CREATE),
        (False, "a", "a", False, ChangeAction.UNCHANGED),
        (False, "b", "a", False, ChangeAction.UPDATE),
        (False, "a", "a", True, ChangeAction.CREATE),  # deleted earlier, delivered again
        (True, "a", "a", False, ChangeAction.DELETE),
        (True, "a", None, False, ChangeAction.UNCHANGED),  # never loaded: nothing to delete
        (True, "a", "a", True, ChangeAction.UNCHANGED),  # already deleted
    ],
)
def test_decide_from_fingerprints_alone(
    deleted: bool, fp: str, previous: str | None, previously_deleted: bool, expected: ChangeAction
) -> None:
    assert decide(deleted, fp, previous, previously_deleted) is expected


def test_files_are_remembered_by_vendor_and_hash(store: StateStore) -> None:
    assert not store.is_loaded("demo", "abc")
    store.mark_loaded("demo", "abc", "file.mrc", "run-1")
    store.mark_loaded("demo", "abc", "file.mrc", "run-2")  # a re-run marks it again, harmlessly
    assert store.is_loaded("demo", "abc")
    assert not store.is_loaded("other_vendor", "abc")


def test_applied_write_is_acknowledged_once_and_updates_the_record_state(store: StateStore) -> None:
    key = idempotency_key("ils_default", "DLC:1", "fp1", "create")
    fields = {"ils": "ils_default", "record_key": "DLC:1", "fingerprint": "fp1", "action": "create"}
    store.record_pending(key, run_id="r1", chunk_id="c1", ils_id=None, **fields)
    pending = store.ledger_entry(key)
    assert pending is not None and pending.status == "pending"
    assert store.applied("ils_default", ["DLC:1"]) == {}

    store.record_applied(key, ils_id="42", run_id="r1", **fields)

    entry = store.ledger_entry(key)
    assert entry is not None and (entry.status, entry.ils_id) == ("applied", "42")
    applied = store.applied("ils_default", ["DLC:1", "DLC:2"])
    assert set(applied) == {"DLC:1"}
    assert (applied["DLC:1"].ils_id, applied["DLC:1"].fingerprint) == ("42", "fp1")


def test_state_survives_reopening_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    key = idempotency_key("ils_default", "k", "fp", "update")
    fields = {"ils": "ils_default", "record_key": "k", "fingerprint": "fp", "action": "update"}
    first = StateStore(url)
    first.record_pending(key, run_id="r", chunk_id="c", ils_id="7", **fields)
    first.record_applied(key, ils_id="7", run_id="r", **fields)
    assert StateStore(url).applied("ils_default", ["k"])["k"].fingerprint == "fp"


def test_idempotency_key_depends_on_every_part() -> None:
    base = idempotency_key("ils", "k", "fp", "create")
    assert base == idempotency_key("ils", "k", "fp", "create")
    assert len({base, idempotency_key("ils2", "k", "fp", "create"),
                idempotency_key("ils", "k2", "fp", "create"),
                idempotency_key("ils", "k", "fp2", "create"),
                idempotency_key("ils", "k", "fp", "update")}) == 5  # fmt: skip
