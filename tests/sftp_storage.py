"""Run storage on the real SFTP test server, as Airflow tasks open it (Connection + Variables).

def test_x(sftp_store: SftpStore) -> None:
    storage = sftp_store.worker(tmp_path / "worker-1")   # a worker with its own home
    ... sftp_store.stored("staging") lists what the server holds ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymarc import Record

from catalog_sync.paths import layout
from catalog_sync.storage import SharedStorage
from catalog_sync_airflow.runtime import run_storage
from tests.privacy_canaries import write_records
from tests.sftp_server import PASSWORD, USER, SftpServer

STORE = "catalog-sync"  # the storage root on the server (its chroot is the test's folder)
CONN_ID = "catalog_sync_storage"


@dataclass
class SftpStore:
    server: SftpServer
    url: str

    @property
    def root(self) -> Path:
        """The server's own disk under the storage root (what the SFTP server holds)."""
        return self.server.state.root / STORE

    def worker(self, home: Path) -> SharedStorage:
        """The storage as a worker with `home` sees it, built as the Airflow task builds it."""
        home.mkdir(parents=True, exist_ok=True)
        return run_storage(layout(home).root, self.url, CONN_ID)

    def stored(self, prefix: str) -> list[str]:
        base = self.root / prefix
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())


@pytest.fixture
def sftp_store(sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SftpStore]:
    connection = {
        "conn_type": "sftp",
        "host": "127.0.0.1",
        "port": sftp_server.port,
        "login": USER,
        "password": PASSWORD,
        "extra": {"known_hosts": str(sftp_server.known_hosts)},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
    (sftp_server.state.root / STORE).mkdir()
    yield SftpStore(sftp_server, f"sftp:///{STORE}")


def deliver(store: SftpStore, records: list[Record], name: str = "delivery.mrc") -> None:
    """The vendor's delivery, laid in the shared inbox on the storage server."""
    write_records(records, store.root / "inbox" / "demo" / name)
