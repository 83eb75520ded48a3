"""Every file of the shared corpus goes through `catalog-sync validate` and adds up."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from catalog_sync.ingest_cli import validate_main

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared")) / "corpus"
# Files big enough to dominate the run are read only partly (the first records of the file).
_SLICED = {"loc-marc-open-access/BooksAll.2016.part01.utf8.first5000.mrc": 1000}


def _corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file())


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not present at {CORPUS}")
@pytest.mark.parametrize("relative", _corpus_files())
def test_every_corpus_file_validates_and_accounts_for_every_record(
    relative: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = tmp_path / "report.json"
    argv = [str(CORPUS / relative), "--report", str(report_path), "--rejects", str(tmp_path / "r")]
    if relative in _SLICED:
        argv += ["--limit", str(_SLICED[relative])]
    code = validate_main(argv)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["records_total"] == report["accepted"] + report["rejected"]
    assert report["rejected"] == sum(report["reasons"].values())
    if report["file_error"] is None:
        assert code == 0
    else:
        # Not MARC at all (LICENSE, JSON, gzip, ...): exit 1 and a message naming the file.
        assert code in (0, 1)
        assert Path(relative).name in capsys.readouterr().out
