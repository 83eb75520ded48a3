"""A LandingFile description of a file on disk: content hash and sniffed format, streamed."""

from __future__ import annotations

import hashlib
from pathlib import Path

from catalog_sync.marc.sniff import detect_format
from catalog_sync.models import LandingFile

_HASH_BLOCK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def describe_landing(path: Path, vendor: str) -> LandingFile:
    """LandingFile for `path` as it is (raises EmptyFileError / NotMarcError like detect_format)."""
    path = Path(path).resolve()
    fmt = detect_format(path)
    return LandingFile(
        vendor=vendor,
        name=path.name,
        path=str(path),
        sha256=sha256_of(path),
        size=path.stat().st_size,
        format=fmt,
    )
