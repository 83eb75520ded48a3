"""Retention: purge staging data, reject files and manifests older than the vendor's periods.

    periods = RetentionPeriods(staging=timedelta(days=14), manifests=timedelta(days=400))
    removed = purge_expired(
        {layout.staging / vendor: periods.staging,
         layout.rejects / vendor: periods.rejects,
         layout.reports / vendor: periods.manifests},
        now=datetime.now(UTC),
    )

Age is the file's modification time. Nothing outside the given roots is touched: symbolic
links are removed as links (never followed), and the roots themselves are kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog_sync.storage import SharedStorage


class RetentionError(ValueError):
    reason = "retention_invalid"


class RetentionPeriods(BaseModel):
    """How long one vendor's run data is kept (defaults suit a public library's audit cycle)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    staging: timedelta = Field(default=timedelta(days=14))
    rejects: timedelta = Field(default=timedelta(days=90))
    manifests: timedelta = Field(default=timedelta(days=400))

    @field_validator("staging", "rejects", "manifests")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("a retention period must be longer than zero")
        return v


def purge(
    root: Path,
    older_than: timedelta,
    now: datetime,
    *,
    pattern: str = "*",
    dry_run: bool = False,
) -> list[Path]:
    """Delete files under `root` (recursively) last modified before `now - older_than`.

    `pattern` (fnmatch on the file name) narrows what is purged. Directories left empty by the
    purge are removed too (never `root`). Returns what was (or, with dry_run, would be)
    removed, files first, sorted.
    """
    if older_than <= timedelta(0):
        raise RetentionError(f"refusing to purge with a period of {older_than}")
    if now.tzinfo is None:
        raise RetentionError("now must be timezone-aware")
    root = Path(root)
    if not root.is_dir() or root.is_symlink():
        return []
    cutoff = (now - older_than).timestamp()
    removed_files: list[Path] = []
    removed_dirs: list[Path] = []
    gone: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(root, topdown=False, followlinks=False):
        directory = Path(dirpath)
        # os.walk lists symlinks to directories under dirnames: they are removed as links.
        links = [d for d in dirnames if (directory / d).is_symlink()]
        removed_here = False
        for name in [*filenames, *links]:
            path = directory / name
            if fnmatch(name, pattern) and path.lstat().st_mtime < cutoff:
                removed_files.append(path)
                gone.add(path)
                removed_here = True
                if not dry_run:
                    path.unlink(missing_ok=True)
        if directory == root:
            continue
        empty = all(child in gone for child in directory.iterdir())
        if not empty:
            continue
        # Emptied by this purge, or an old empty leftover: either way nothing is lost.
        emptied = removed_here or any(directory / d in gone for d in dirnames)
        if emptied or directory.lstat().st_mtime < cutoff:
            removed_dirs.append(directory)
            gone.add(directory)
            if not dry_run:
                directory.rmdir()
    return sorted(removed_files) + sorted(removed_dirs)


def purge_expired(
    targets: Mapping[Path, timedelta], now: datetime, *, dry_run: bool = False
) -> list[Path]:
    """Purge several roots, each with its own period (staging, rejects, manifests ...)."""
    removed: list[Path] = []
    for root, period in targets.items():
        removed.extend(purge(root, period, now, dry_run=dry_run))
    return removed


def vendor_retention_keys(vendor: str, periods: RetentionPeriods) -> dict[str, timedelta]:
    """A vendor's folders (run storage keys), each with the period the vendor configured.

    Staging (staged change sets) and the landed copies of deliveries go after `staging`;
    reject files after `rejects`; run reports, manifests and audit logs after `manifests`.
    """
    return {
        f"staging/{vendor}": periods.staging,
        f"landing/{vendor}": periods.staging,
        f"rejects/{vendor}": periods.rejects,
        f"reports/{vendor}": periods.manifests,
        f"audit/{vendor}": periods.manifests,
    }


def vendor_retention_targets(
    root: Path, vendor: str, periods: RetentionPeriods
) -> dict[Path, timedelta]:
    """vendor_retention_keys as folders under a local runtime root."""
    return {root / key: period for key, period in vendor_retention_keys(vendor, periods).items()}


def purge_stored(
    storage: SharedStorage, vendor: str, periods: RetentionPeriods, now: datetime
) -> list[str]:
    """Purge a vendor's expired objects from shared run storage (by modification time)."""
    if now.tzinfo is None:
        raise RetentionError("now must be timezone-aware")
    removed: list[str] = []
    for prefix, period in vendor_retention_keys(vendor, periods).items():
        removed.extend(storage.purge(prefix, period, now))
    return removed
