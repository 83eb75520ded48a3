"""The retention job purges each vendor's own folders, each after its configured period."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from catalog_sync.retention import RetentionPeriods, purge_expired, vendor_retention_targets


def _file(path: Path, age_days: float, now: datetime) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    ts = (now - timedelta(days=age_days)).timestamp()
    os.utime(path, (ts, ts))
    return path


def test_each_kind_of_data_expires_after_its_own_period_and_other_vendors_are_untouched(
    tmp_path: Path,
) -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    periods = RetentionPeriods(
        staging=timedelta(days=7), rejects=timedelta(days=30), manifests=timedelta(days=365)
    )
    old_staging = _file(tmp_path / "staging/demo/run1/c.jsonl", 8, now)
    new_staging = _file(tmp_path / "staging/demo/run2/c.jsonl", 2, now)
    old_landing = _file(tmp_path / "landing/demo/abc/f.mrc", 8, now)
    kept_rejects = _file(tmp_path / "rejects/demo/run1/c.rej", 8, now)
    old_rejects = _file(tmp_path / "rejects/demo/run0/c.rej", 31, now)
    kept_manifest = _file(tmp_path / "reports/demo/run0/manifest.json", 31, now)
    other_vendor = _file(tmp_path / "staging/other/run1/c.jsonl", 100, now)

    removed = purge_expired(vendor_retention_targets(tmp_path, "demo", periods), now)

    assert {old_staging, old_landing, old_rejects} <= set(removed)
    for gone in (old_staging, old_landing, old_rejects):
        assert not gone.exists()
    for kept in (new_staging, kept_rejects, kept_manifest, other_vendor):
        assert kept.exists()
