"""fetch: find new deliveries in the vendor's inbox and copy them, hashed, into the landing area."""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
from pathlib import Path

from catalog_sync.config import VendorConfig
from catalog_sync.errors import DeliveryFormatError, InboxMissingError
from catalog_sync.marc.landing import sha256_of
from catalog_sync.marc.sniff import detect_format
from catalog_sync.models import LandingFile, RecordFormat
from catalog_sync.paths import RuntimeLayout
from catalog_sync.state import StateStore

log = logging.getLogger(__name__)


def list_inbox(vendor: VendorConfig, layout: RuntimeLayout) -> list[Path]:
    inbox = vendor.inbox_path(layout.root)
    if not inbox.is_dir():
        raise InboxMissingError(
            f"vendor {vendor.name!r}: inbox folder {inbox} does not exist. Create it and put the "
            f"delivery there, or correct source.inbox for {vendor.name!r} in vendors.yaml."
        )
    names = sorted(
        p
        for p in inbox.iterdir()
        if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in vendor.source.patterns)
    )
    return names


def land(path: Path, sha256: str, layout: RuntimeLayout) -> Path:
    """Copy into landing/<sha256>/<name>, renamed into place only when complete (idempotent)."""
    dest_dir = layout.landing / sha256
    dest = dest_dir / path.name
    if dest.exists() and dest.stat().st_size == path.stat().st_size:
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".{path.name}.partial"
    shutil.copyfile(path, tmp)
    os.replace(tmp, dest)
    return dest


def _format_of(path: Path, vendor: VendorConfig) -> RecordFormat:
    """The delivery's format from its content; a vendor's declared format must agree with it."""
    found = detect_format(path)
    if vendor.declared_format and vendor.declared_format != found:
        raise DeliveryFormatError(
            f"vendor {vendor.name!r} declares {vendor.declared_format} deliveries, but "
            f"{path.name} contains {found}; fix the file or declared_format in vendors.yaml"
        )
    return found


def fetch_deliveries(
    vendor: VendorConfig, layout: RuntimeLayout, state: StateStore, *, force: bool = False
) -> list[LandingFile]:
    """New files of the vendor's inbox, landed; files already loaded are skipped unless forced.

    Every file is checked before any is landed, so an unreadable delivery fails the run with
    nothing half-written.
    """
    found: list[tuple[Path, str]] = []
    for path in list_inbox(vendor, layout):
        sha = sha256_of(path)
        if not force and state.is_loaded(vendor.name, sha):
            log.info("skipping %s: already loaded (sha256 %s)", path.name, sha)
            continue
        found.append((path, sha))
    checked = [(path, sha, _format_of(path, vendor)) for path, sha in found]
    landed = []
    for path, sha, fmt in checked:
        dest = land(path, sha, layout)
        landed.append(
            LandingFile(
                vendor=vendor.name,
                name=path.name,
                path=str(dest),
                sha256=sha,
                size=dest.stat().st_size,
                format=fmt,
            )
        )
        log.info("landed %s (%s, %d bytes, sha256 %s)", path.name, fmt, dest.stat().st_size, sha)
    return landed
