"""Retention purge on real files with real modification times."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog_sync.retention import RetentionError, RetentionPeriods, purge, purge_expired

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def make(path: Path, age: timedelta, body: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def age_dir(path: Path, age: timedelta) -> None:
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))


def test_only_files_older_than_the_period_are_removed(tmp_path: Path) -> None:
    staging = tmp_path / "staging" / "demo"
    old = make(staging / "run1" / "chunk-a.jsonl", timedelta(days=15))
    old_too = make(staging / "run1" / "chunk-b.jsonl", timedelta(days=30))
    fresh = make(staging / "run2" / "chunk-a.jsonl", timedelta(days=13, hours=23))

    removed = purge(staging, timedelta(days=14), NOW)

    assert removed == [old, old_too, staging / "run1"]
    assert not old.exists() and not old_too.exists() and not (staging / "run1").exists()
    assert fresh.exists() and staging.is_dir()


def test_a_directory_with_a_fresh_file_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "reports" / "demo"
    old = make(root / "run1" / "report.json", timedelta(days=500))
    kept = make(root / "run1" / "manifest.json", timedelta(days=1))
    assert purge(root, timedelta(days=400), NOW) == [old]
    assert kept.exists()


def test_pattern_limits_the_purge_to_matching_names(tmp_path: Path) -> None:
    root = tmp_path / "reports" / "demo"
    manifest = make(root / "run1" / "manifest.json", timedelta(days=500))
    report = make(root / "run1" / "report.txt", timedelta(days=500))
    assert purge(root, timedelta(days=400), NOW, pattern="manifest*.json") == [manifest]
    assert report.exists()


def test_dry_run_lists_without_deleting(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    old = make(root / "run1" / "c.jsonl", timedelta(days=20))
    assert purge(root, timedelta(days=14), NOW, dry_run=True) == [old, root / "run1"]
    assert old.exists()


def test_symlinks_are_removed_as_links_and_never_followed(tmp_path: Path) -> None:
    outside = make(tmp_path / "landing" / "vendor-file.mrc", timedelta(days=100))
    outside_dir = outside.parent
    root = tmp_path / "reports"
    root.mkdir()
    link_file = root / "latest-file"
    link_dir = root / "latest"
    link_file.symlink_to(outside)
    link_dir.symlink_to(outside_dir, target_is_directory=True)
    for link in (link_file, link_dir):
        stamp = (NOW - timedelta(days=100)).timestamp()
        os.utime(link, (stamp, stamp), follow_symlinks=False)

    removed = purge(root, timedelta(days=14), NOW)

    assert sorted(removed) == sorted([link_file, link_dir])
    assert outside.exists() and outside_dir.is_dir()


def test_old_empty_leftover_directories_go_new_empty_ones_stay(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    (root / "old-empty").mkdir(parents=True)
    (root / "in-progress").mkdir()
    age_dir(root / "old-empty", timedelta(days=30))
    assert purge(root, timedelta(days=14), NOW) == [root / "old-empty"]
    assert (root / "in-progress").is_dir()


def test_each_root_uses_its_own_period(tmp_path: Path) -> None:
    periods = RetentionPeriods(staging=timedelta(days=14), manifests=timedelta(days=400))
    staged = make(tmp_path / "staging" / "demo" / "r" / "c.jsonl", timedelta(days=20))
    manifest = make(tmp_path / "reports" / "demo" / "r" / "manifest.json", timedelta(days=20))
    removed = purge_expired(
        {
            tmp_path / "staging" / "demo": periods.staging,
            tmp_path / "reports" / "demo": periods.manifests,
        },
        NOW,
    )
    assert staged in removed and manifest.exists()


def test_a_missing_root_purges_nothing(tmp_path: Path) -> None:
    assert purge(tmp_path / "absent", timedelta(days=1), NOW) == []


@pytest.mark.parametrize("period", [timedelta(0), timedelta(days=-1)])
def test_a_non_positive_period_is_refused(tmp_path: Path, period: timedelta) -> None:
    make(tmp_path / "a", timedelta(days=1))
    with pytest.raises(RetentionError):
        purge(tmp_path, period, NOW)
    with pytest.raises(ValueError):
        RetentionPeriods(staging=period)
    assert (tmp_path / "a").exists()


def test_a_naive_now_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RetentionError):
        purge(tmp_path, timedelta(days=1), datetime(2026, 11, 28))
