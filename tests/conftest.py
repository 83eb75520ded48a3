"""Shared fixtures: a real Redis, the real ILS emulator over HTTP, and the shared corpus."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"

# Airflow reads its settings when first imported: give the test session its own Airflow home
# (SQLite), whatever the calling shell exported, so tests never touch var/ of `make demo`.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="catalog-sync-test-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_AIRFLOW_HOME / "logs"),
    }
)

from catalog_sync.services import ServiceProcess, start_emulator, start_redis  # noqa: E402
from tests.folio_emulator import folio, loc_records, okapi, shared_folio  # noqa: E402, F401
from tests.sftp_server import sftp_server  # noqa: E402, F401 - shared fixture
from tests.sftp_storage import sftp_store  # noqa: E402, F401 - shared fixture


def shared_dir() -> Path:
    """../shared beside the checkout (CI lays a copy there), or $CATALOG_SYNC_SHARED."""
    return Path(os.environ.get("CATALOG_SYNC_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = shared_dir() / "corpus"
    if not path.is_dir():
        pytest.skip(f"shared corpus not present at {path}")
    return path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when REDIS_URL is set, else a private redis-server we start."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The test session's Airflow metadata DB, migrated once (about 7 s)."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ)
    return _AIRFLOW_HOME


EmulatorFactory = Callable[..., ServiceProcess]


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[EmulatorFactory]:
    """Start ILS emulators (own process, real HTTP) with any command-line options."""
    started: list[ServiceProcess] = []

    def start(*extra_args: str, db: Path | None = None, port: int | None = None) -> ServiceProcess:
        proc = start_emulator(
            tmp_path, port=port, db=db or tmp_path / "emulator.db", extra_args=list(extra_args)
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def emulator(emulator_factory: EmulatorFactory) -> ServiceProcess:
    return emulator_factory()
