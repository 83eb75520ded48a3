"""Benchmark input: the LoC 250,000-record file (from pymarc's sdist, cached) and slices of it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pymarc

REPO_ROOT = Path(__file__).resolve().parents[1]
# Downloads, slices, throwaway venvs and seeded ILS copies; gitignored.
CACHE = Path(os.environ.get("CATALOG_SYNC_BENCH_CACHE", REPO_ROOT / "bench" / "cache"))
LOC_NAME = "BooksAll.2016.part01.utf8"
PYMARC_SDIST = "pymarc==5.4.0"
RECORD_TERMINATOR = b"\x1d"
CHANGE_NOTE = "Catalog Sync benchmark: vendor revision"


def shared_dir() -> Path:
    return Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared"))


def quick_file() -> Path | None:
    """The shared corpus' first 5,000 LoC records, or None where shared/ is absent."""
    path = shared_dir() / "corpus" / "loc-marc-open-access" / f"{LOC_NAME}.first5000.mrc"
    return path if path.is_file() else None


def full_file(cache: Path = CACHE) -> Path:
    """The 250,000-record LoC file, downloaded once (pymarc 5.4.0 sdist) and extracted."""
    target = cache / LOC_NAME
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    sdists = sorted(cache.glob("pymarc-5.4.0.tar.gz"))
    if not sdists:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                PYMARC_SDIST,
                "-d",
                str(cache),
                "--quiet",
                "--disable-pip-version-check",
            ],
            check=True,
            timeout=900,
        )
        sdists = sorted(cache.glob("pymarc-5.4.0.tar.gz"))
    with tarfile.open(sdists[0]) as tar:
        member = tar.getmember(f"pymarc-5.4.0/{LOC_NAME}")
        source = tar.extractfile(member)
        if source is None:
            raise FileNotFoundError(f"{LOC_NAME} is not a regular file in {sdists[0].name}")
        partial = target.with_suffix(".partial")
        with source, partial.open("wb") as out:
            while block := source.read(1 << 20):
                out.write(block)
    partial.replace(target)
    return target


def take_records(source: Path, n: int, dest: Path) -> Path:
    """The first `n` ISO 2709 records of `source` as their own file (reused when present)."""
    if dest.is_file() and dest.stat().st_mtime >= source.stat().st_mtime:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    taken = 0
    with source.open("rb") as src, partial.open("wb") as out:
        tail = b""
        while taken < n and (block := src.read(1 << 20)):
            parts = (tail + block).split(RECORD_TERMINATOR)
            tail = parts.pop()
            for part in parts:
                out.write(part + RECORD_TERMINATOR)
                taken += 1
                if taken == n:
                    break
    if taken < n:
        partial.unlink()
        raise ValueError(f"{source.name} holds only {taken} records, {n} wanted")
    partial.replace(dest)
    return dest


def with_changes(source: Path, dest: Path, every: int = 20, note: str = CHANGE_NOTE) -> int:
    """Copy `source` with every `every`-th record revised (a 500 note added); returns how many.

    The 001 stays, so each revised record is an update of the one the seed run created; another
    `note` revises the same records again (successive measured runs on one seeded ILS).
    """
    changed = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as src, dest.open("wb") as out:
        reader = pymarc.MARCReader(src, to_unicode=True, permissive=True, force_utf8=True)
        for n, record in enumerate(reader):
            raw = reader.current_chunk
            if record is not None and n % every == every - 1:
                record.add_ordered_field(
                    pymarc.Field(
                        tag="500",
                        indicators=pymarc.Indicators(" ", " "),
                        subfields=[pymarc.Subfield("a", f"{note} {n}.")],
                    )
                )
                raw = record.as_marc()
                changed += 1
            out.write(raw)
    return changed
