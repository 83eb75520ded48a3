"""Deliveries as vendors really send them: BIBFRAME RDF/XML, and files on the vendor's SFTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog_sync.bibframe import convert_bibframe
from tests.end_to_end.harness import DemoRun, use_vendors
from tests.sftp_server import SftpServer

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Two LoC deliveries: the regression Instance (maps), and an Instance whose subject is given
# only by URI (cannot be mapped, so it must be rejected, not half-mapped).
BIBFRAME = [
    FIXTURES / "bibframe" / "regression-bibframe.xml",
    FIXTURES / "bibframe" / "bfdb.text-contributors-instancecontributor.rdf",
]


def test_a_bibframe_delivery_is_loaded_as_marc_and_unmappable_instances_are_rejected(
    demo: DemoRun, tmp_path: Path
) -> None:
    expected = [convert_bibframe(p, tmp_path / f"{p.name}.xml") for p in BIBFRAME]
    converted = sum(e.converted for e in expected)
    rejected = sum(e.rejected for e in expected)
    assert converted >= 1 and rejected >= 1
    for path in BIBFRAME:
        shutil.copy(path, demo.inbox / path.name)

    assert demo.run().state == "success"

    summary = demo.summary()
    assert summary["records"] == sum(e.instances for e in expected)
    assert summary["rejected"] == rejected
    assert summary["created"] == converted == len(demo.stored())
    report = (demo.home / "reports" / "demo" / "latest" / "report.txt").read_text()
    for code in {code for e in expected for code in e.reasons}:
        assert f"bibframe:{code}" in report


def test_an_sftp_vendor_is_fetched_loaded_and_not_fetched_twice(
    demo: DemoRun, sftp_server: SftpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_vendors(tmp_path, monkeypatch, {
        "acme": {
            "description": "A vendor that delivers by SFTP",
            "source": {
                "kind": "sftp",
                "delivery": {
                    "kind": "sftp",
                    "conn_id": "acme_sftp",
                    "remote_dir": "/",
                    "patterns": ["*.mrc"],
                    "stable_seconds": 0,
                    "lookback_days": None,
                },
            },
        }
    })  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ACME_SFTP", sftp_server.airflow_connection())
    shutil.copy(FIXTURES / "delivery" / "test_data.utf8.mrc", sftp_server.state.root)

    assert demo.run(force=False, vendor="acme").state == "success"
    # 30 LoC records, one of them a delete of a record this ILS never had.
    first = demo.summary("acme")
    assert (first["records"], first["created"], first["unchanged"]) == (30, 29, 1)
    assert len(demo.stored()) == 29
    assert list((demo.home / "archive" / "acme").iterdir())

    assert demo.run(force=False, vendor="acme").state == "success"
    assert demo.summary("acme")["records"] == 0
    assert len(demo.writes()) == 29
