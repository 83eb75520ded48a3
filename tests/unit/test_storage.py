"""SharedStorage over a file:// root: keys, atomic publishing, fetching and purging."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from upath import UPath

from catalog_sync.retention import RetentionPeriods, purge_stored
from catalog_sync.storage import SharedStorage, StorageError, StoredObjectMissing, check_key


def shared(tmp_path: Path, worker: str = "worker") -> SharedStorage:
    """A storage root that is not the worker's folder (as an NFS mount or a bucket would be)."""
    (tmp_path / "store").mkdir(exist_ok=True)
    return SharedStorage.at(UPath(f"file://{tmp_path / 'store'}"), tmp_path / worker)


def test_the_worker_folder_as_storage_root_copies_nothing(tmp_path: Path) -> None:
    storage = SharedStorage.at(UPath(tmp_path), tmp_path)
    out = tmp_path / "staging" / "demo" / "run" / "c1.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text("{}\n")

    assert not storage.shared
    assert storage.publish(out, move=True) == "staging/demo/run/c1.jsonl"
    assert out.read_text() == "{}\n"  # published in place, never moved away
    assert storage.fetch("staging/demo/run/c1.jsonl") == out


def test_a_published_file_replaces_the_stored_one_whole_and_leaves_no_partial(
    tmp_path: Path,
) -> None:
    storage = shared(tmp_path)
    out = tmp_path / "worker" / "reports" / "demo" / "run" / "report.txt"
    out.parent.mkdir(parents=True)
    for text in ("first\n", "second\n"):
        out.write_text(text)
        key = storage.publish(out)

    stored = tmp_path / "store" / key
    assert stored.read_text() == "second\n"
    assert [p.name for p in stored.parent.iterdir()] == ["report.txt"]  # no *.partial left


def test_another_worker_fetches_a_published_file_and_the_publisher_can_drop_its_copy(
    tmp_path: Path,
) -> None:
    publisher, reader = shared(tmp_path, "one"), shared(tmp_path, "two")
    out = tmp_path / "one" / "staging" / "demo" / "run" / "c1.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text("staged\n")

    key = publisher.publish(out, move=True)

    assert not out.exists()
    assert reader.fetch(key).read_text() == "staged\n"
    assert reader.fetch(key) == tmp_path / "two" / key


def test_fetching_a_key_that_was_never_published_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoredObjectMissing, match=r"staging/demo/run/gone\.jsonl is not in"):
        shared(tmp_path).fetch("staging/demo/run/gone.jsonl")


@pytest.mark.parametrize("key", ["../etc/passwd", "staging/../../x", "", "."])
def test_a_key_that_could_leave_the_storage_root_is_refused(key: str) -> None:
    with pytest.raises(StorageError, match="not a run storage key"):
        check_key(key)


def test_a_file_outside_the_worker_folder_cannot_be_published(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="outside the worker folder"):
        shared(tmp_path).publish(tmp_path / "elsewhere.txt")


def test_purging_shared_storage_removes_expired_objects_and_the_folders_they_leave_empty(
    tmp_path: Path,
) -> None:
    storage = shared(tmp_path)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    store = tmp_path / "store"

    def stored(key: str, age_days: float) -> Path:
        path = store / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        ts = (now - timedelta(days=age_days)).timestamp()
        os.utime(path, (ts, ts))
        return path

    old_staging = stored("staging/demo/run-1/c1.jsonl", 20)
    new_staging = stored("staging/demo/run-2/c1.jsonl", 1)
    old_report = stored("reports/demo/run-1/report.json", 20)  # reports are kept longer
    other_vendor = stored("staging/acme/run-1/c1.jsonl", 20)

    removed = purge_stored(storage, "demo", RetentionPeriods(), now)

    assert removed == ["staging/demo/run-1/c1.jsonl"]
    assert not old_staging.exists() and not old_staging.parent.exists()
    assert new_staging.exists() and old_report.exists() and other_vendor.exists()
    assert (store / "staging" / "demo").is_dir()  # the vendor's folder itself stays


def test_a_worker_trims_its_old_landing_copies_only_when_the_storage_is_shared(
    tmp_path: Path,
) -> None:
    from catalog_sync.config import load_vendors
    from catalog_sync.paths import layout
    from catalog_sync.pipeline.stored import prune_worker_copies

    vendor = load_vendors()["demo"]
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def landed(home: Path, sha: str, age_days: float) -> Path:
        path = home / "landing" / "demo" / sha / "delivery.mrc"
        path.parent.mkdir(parents=True)
        path.write_text("x")
        ts = (now - timedelta(days=age_days)).timestamp()
        os.utime(path, (ts, ts))
        return path

    worker = tmp_path / "worker"
    old, new = landed(worker, "a" * 64, 30), landed(worker, "b" * 64, 1)
    prune_worker_copies(vendor, layout(worker), shared(tmp_path), now)
    assert not old.exists() and new.exists()

    home = tmp_path / "home"  # one machine: the landing folder is the storage itself
    kept = landed(home, "c" * 64, 30)
    assert prune_worker_copies(vendor, layout(home), SharedStorage.local(home), now) == []
    assert kept.exists()
