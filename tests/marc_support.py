"""Shared by the MARC reading tests: the fixture folder, a vendor, and a file's outcomes."""

from __future__ import annotations

from pathlib import Path

from catalog_sync.config import SourceConfig, VendorConfig
from catalog_sync.marc.filescan import iter_outcomes
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, Rejection

MARC_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "marc"


def vendor(**overrides: object) -> VendorConfig:
    """The demo vendor's defaults with `overrides` (e.g. marc_strictness="strict")."""
    return VendorConfig(name="demo", source=SourceConfig(inbox="inbox/demo"), **overrides)  # type: ignore[arg-type]


def outcomes(path: Path, **overrides: object) -> list[PreparedRecord | Rejection]:
    """PreparedRecord or Rejection for every record of the file at `path`, in file order."""
    landing = describe_landing(path, "demo")
    return [o for _, _, o in iter_outcomes(landing, vendor(**overrides))]
