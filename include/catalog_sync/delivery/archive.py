"""Archive every fetched delivery under its sha256, and purge it after the retention period."""

from __future__ import annotations

import time
from pathlib import Path

from catalog_sync.delivery.landing import copy_verified

_SIDECAR = ".sha256"


def archive_delivery(path: Path, sha256: str, name: str, archive_dir: Path) -> Path:
    """Copy a delivery to archive_dir/<sha256>__<name> with a `sha256sum`-style sidecar.

    Idempotent: a delivery already archived (same content hash) is not copied again.
    """
    dest = archive_dir / f"{sha256}__{name}"
    if not dest.exists():
        copy_verified(path, dest)
        sidecar = dest.with_name(dest.name + _SIDECAR)
        sidecar.write_text(f"{sha256}  {name}\n", encoding="utf-8")
    return dest


def purge_archive(
    archive_dir: Path, older_than_days: float, now: float | None = None
) -> list[Path]:
    """Delete archived deliveries (and their sidecars) archived more than N days ago."""
    if not archive_dir.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - older_than_days * 86400
    removed: list[Path] = []
    for path in sorted(archive_dir.iterdir()):
        if not path.is_file() or path.name.endswith(_SIDECAR) or path.name.endswith(".partial"):
            continue
        if path.stat().st_mtime < cutoff:
            path.unlink()
            path.with_name(path.name + _SIDECAR).unlink(missing_ok=True)
            removed.append(path)
    return removed
