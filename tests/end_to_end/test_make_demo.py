"""`catalog-sync demo` (what `make demo` runs), as a new user would run it, twice in a row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from catalog_sync.devstack import EMULATOR_PASSWORD
from catalog_sync.services import free_port

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "marc" / "test_data.utf8.mrc"


def _demo(home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catalog_sync", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_demo_loads_a_file_then_a_second_run_reports_every_record_unchanged(
    tmp_path: Path, redis_url: str
) -> None:
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CATALOG_SYNC"))}
    env.update(
        CATALOG_SYNC_HOME=str(home),
        CATALOG_SYNC_EMULATOR_PORT=str(free_port()),
        REDIS_URL=redis_url,
    )
    try:
        first = _demo(home, env, "--file", str(FIXTURE))
        second = _demo(home, env, "--file", str(FIXTURE))
    finally:
        subprocess.run(
            [sys.executable, "-m", "catalog_sync", "devstack", "down"], env=env, check=False
        )

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    # traject's 30 LoC records: one is a deleted record (leader/05 d) never loaded before.
    assert first.stdout.rstrip().splitlines()[-1] == (
        "run summary: records=30 accepted=30 rejected=0 created=29 updated=0 deleted=0 "
        "unchanged=1 failed=0 held=0"
    )
    assert second.stdout.rstrip().splitlines()[-1] == (
        "run summary: records=30 accepted=30 rejected=0 created=0 updated=0 deleted=0 "
        "unchanged=30 failed=0 held=0"
    )
    assert (home / "airflow" / "airflow.db").is_file()
    assert (home / "emulator.db").is_file()
    _assert_no_secret_left_readable(home)


def test_demo_ils_folio_runs_the_same_file_into_folio_with_the_same_summary(
    tmp_path: Path, redis_url: str
) -> None:
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CATALOG_SYNC"))}
    env.update(
        CATALOG_SYNC_HOME=str(home),
        CATALOG_SYNC_EMULATOR_PORT=str(free_port()),
        CATALOG_SYNC_FOLIO_EMULATOR_PORT=str(free_port()),
        REDIS_URL=redis_url,
    )
    try:
        first = _demo(home, env, "--ils", "folio", "--file", str(FIXTURE))
        second = _demo(home, env, "--ils", "folio", "--file", str(FIXTURE))
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "catalog_sync", "devstack", "down"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "catalog_sync_demo_folio" in first.stdout
    assert first.stdout.rstrip().splitlines()[-1] == (
        "run summary: records=30 accepted=30 rejected=0 created=29 updated=0 deleted=0 "
        "unchanged=1 failed=0 held=0"
    )
    assert second.stdout.rstrip().splitlines()[-1] == (
        "run summary: records=30 accepted=30 rejected=0 created=0 updated=0 deleted=0 "
        "unchanged=30 failed=0 held=0"
    )
    assert (home / "emulator-folio.db").is_file()
    assert not (home / "run" / "emulator_folio.json").exists(), down.stdout + down.stderr
    _assert_no_secret_left_readable(home)


def _assert_no_secret_left_readable(home: Path) -> None:
    """Issue 14 item 5: the provisioning file with the ILS password and PII key is gone."""
    pii_key = home / "airflow" / "pii.key"
    assert pii_key.stat().st_mode & 0o777 == 0o600
    secret_values = [pii_key.read_text().strip(), EMULATOR_PASSWORD]
    provision = home / "airflow" / "provision"
    assert provision.stat().st_mode & 0o777 == 0o700
    leaks = [
        str(path.relative_to(home))
        for path in provision.rglob("*")
        if path.is_file() and any(value in path.read_text() for value in secret_values)
    ]
    assert leaks == []
