"""Run storage on a real SFTP server: workers with empty homes of their own share one run."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncssh
import pymarc
import pytest
from pymarc import Record
from tests.sftp_server import PASSWORD, USER
from tests.sftp_storage import CONN_ID, STORE, SftpStore, deliver

from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.errors import InboxMissingError
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.leases import LeaseManager
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport
from catalog_sync.paths import REPO_ROOT, layout, safe_name
from catalog_sync.pipeline.fetch import FetchResult, fetch_to_storage
from catalog_sync.pipeline.report import latest_report_key, publish_report, write_report
from catalog_sync.pipeline.stored import (
    commit_stored_chunk,
    process_stored_chunk,
    split_stored_file,
)
from catalog_sync.retention import RetentionPeriods, purge_stored
from catalog_sync.services import ServiceProcess
from catalog_sync.storage import LandingIntegrityError, SharedStorage

pytestmark = pytest.mark.timeout(180)

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"


def sample_records(n: int) -> list[Record]:
    with SAMPLE.open("rb") as fh:
        return [copy.deepcopy(r) for r in itertools.islice(pymarc.MARCReader(fh), n)]


def demo_vendor() -> VendorConfig:
    return load_vendors()["demo"].model_copy(update={"records_per_chunk": 15})


def commit(
    report: ChunkReport, home: Path, storage: SharedStorage, state: StateStore, ils_url: str,
    redis_url: str, run_id: str,
) -> CommitReport:  # fmt: skip
    async def main() -> CommitReport:
        ils = ILSSettings(
            name="ils_default", base_url=ils_url, username="catalog", password="catalog-demo"
        )
        async with open_client(ils) as client, LeaseManager.from_url(redis_url) as leases:
            return await commit_stored_chunk(
                report, demo_vendor(), layout(home), storage, client, state, run_id,
                leases=leases,
            )  # fmt: skip

    return asyncio.run(main())


def test_a_chunk_landed_by_one_worker_is_processed_and_committed_by_others_with_empty_homes(
    tmp_path: Path, sftp_store: SftpStore, emulator: ServiceProcess, redis_url: str
) -> None:
    records = sample_records(30)
    records[4].remove_fields("245")  # rejected: its masked copy goes to the reject file
    deliver(sftp_store, records)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")  # stands in for Postgres
    run_id = "manual__2026-11-30T00:00:00+00:00"
    homes = {name: tmp_path / name for name in ("fetcher", "processor", "committer")}
    vendor = demo_vendor()

    # Worker 1 fetches and splits; only keys cross to the next workers (as XCom would carry).
    fetcher = sftp_store.worker(homes["fetcher"])
    fetched = fetch_to_storage(vendor, layout(homes["fetcher"]), fetcher, state, force=True)
    (landed,) = FetchResult.model_validate_json(fetched.model_dump_json()).files
    refs = split_stored_file(landed, fetcher, vendor.records_per_chunk, 1024)
    refs = [ChunkRef.model_validate_json(r.model_dump_json()) for r in refs]
    assert landed.path == f"landing/demo/{landed.sha256}/delivery.mrc"
    assert sftp_store.stored("landing") == [landed.path]

    # Worker 2, whose home is empty, processes every chunk.
    processor = sftp_store.worker(homes["processor"])
    assert not any(homes["processor"].iterdir())
    reports = [
        process_stored_chunk(r, vendor, layout(homes["processor"]), processor, state, run_id)
        for r in refs
    ]
    assert [r.records_total for r in reports] == [15, 15]
    assert sum(r.rejected for r in reports) == 1
    run_dir = f"demo/{safe_name(run_id)}"
    assert sftp_store.stored("staging") == sorted(
        f"staging/{run_dir}/{r.chunk_id}.jsonl" for r in reports
    )
    (rejected,) = [r for r in reports if r.rejected]
    assert sftp_store.stored("rejects") == [
        rejected.rejects_path,
        rejected.rejects_path + ".index.jsonl",
    ]
    # The processor kept only its verified copy of the landing file, no outputs.
    kept = [p.relative_to(homes["processor"]).as_posix() for p in homes["processor"].rglob("*")]
    assert [k for k in kept if Path(homes["processor"], k).is_file()] == [landed.path]

    # Worker 3, another empty home, commits what worker 2 staged, against the real ILS.
    committer = sftp_store.worker(homes["committer"])
    commits = [
        commit(r, homes["committer"], committer, state, emulator.url, redis_url, run_id)
        for r in reports
    ]
    assert sum(c.created for c in commits) == 29
    assert set(EmulatorControl(emulator.url).creates_per_control_number().values()) == {1}
    assert sftp_store.stored("reports") == sorted(
        f"reports/{run_dir}/diffs/{c.chunk_id}.jsonl" for c in commits
    )
    assert all(c.diff_path.startswith(f"reports/{run_dir}/diffs/") for c in commits)

    # The run report, written by yet another worker, lands in the storage too.
    reporter_home = tmp_path / "reporter"
    reporter = sftp_store.worker(reporter_home)
    write_report(layout(reporter_home), "demo", run_id, [landed], reports, commits)
    key = publish_report(reporter, layout(reporter_home), "demo", run_id)
    assert latest_report_key(sftp_store.worker(tmp_path / "reader"), "demo") == key
    summary = json.loads((sftp_store.root / key / "report.json").read_text())["summary"]
    assert (summary["records"], summary["rejected"], summary["created"]) == (30, 1, 29)
    assert not (reporter_home / key / "report.json").exists()


def test_a_cached_landing_copy_that_no_longer_matches_its_sha256_is_refused_and_fetched_again(
    tmp_path: Path, sftp_store: SftpStore, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(sftp_store, sample_records(5))
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    fetcher = sftp_store.worker(tmp_path / "fetcher")
    (landed,) = fetch_to_storage(demo_vendor(), layout(tmp_path / "fetcher"), fetcher, state).files
    worker = sftp_store.worker(tmp_path / "worker")
    cached = worker.landing_copy(landed.path, landed.sha256)
    good = cached.read_bytes()
    cached.write_bytes(good[:-10] + b"x" * 10)  # a damaged local copy

    with caplog.at_level(logging.WARNING, logger="catalog_sync.storage"):
        again = worker.landing_copy(landed.path, landed.sha256)

    assert again.read_bytes() == good
    assert "refusing the cached copy" in caplog.text and landed.sha256 in caplog.text


def test_a_landing_file_changed_in_the_storage_is_refused_with_a_clear_message(
    tmp_path: Path, sftp_store: SftpStore
) -> None:
    deliver(sftp_store, sample_records(5))
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    fetcher = sftp_store.worker(tmp_path / "fetcher")
    (landed,) = fetch_to_storage(demo_vendor(), layout(tmp_path / "fetcher"), fetcher, state).files
    stored = sftp_store.root / landed.path
    stored.write_bytes(stored.read_bytes().replace(b"a", b"b", 1))  # changed where it rests

    worker = sftp_store.worker(tmp_path / "worker")
    with pytest.raises(LandingIntegrityError) as refused:
        worker.landing_copy(landed.path, landed.sha256)

    message = str(refused.value)
    assert f"landing file sftp:///{STORE}/{landed.path} does not match its sha256" in message
    assert landed.sha256 in message and "land the delivery again" in message
    assert not (tmp_path / "worker" / landed.path).exists()  # nothing unverified is kept


def test_sftp_storage_refuses_a_server_whose_host_key_is_not_the_known_one(
    tmp_path: Path, sftp_store: SftpStore
) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    known_hosts = tmp_path / "other_known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sftp_store.server.port} {stranger}")
    connection = {
        "conn_type": "sftp", "host": "127.0.0.1", "port": sftp_store.server.port,
        "login": USER, "password": PASSWORD, "extra": {"known_hosts": str(known_hosts)},
    }  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(connection))
        with pytest.raises(asyncssh.HostKeyNotVerifiable):
            sftp_store.worker(tmp_path / "worker")
    assert sftp_store.server.state.auth_attempts == 0  # the password was never sent


def test_a_vendor_inbox_missing_from_the_storage_fails_fetch_naming_where_it_looked(
    tmp_path: Path, sftp_store: SftpStore
) -> None:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    worker = sftp_store.worker(tmp_path / "worker")

    with pytest.raises(InboxMissingError, match=f"inbox sftp:///{STORE}/inbox/demo does not"):
        fetch_to_storage(demo_vendor(), layout(tmp_path / "worker"), worker, state)


def test_retention_purges_expired_run_files_from_sftp_storage_and_keeps_the_rest(
    tmp_path: Path, sftp_store: SftpStore
) -> None:
    now = datetime.now(UTC)

    def stored(key: str, age_days: float) -> Path:
        path = sftp_store.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
        ts = (now - timedelta(days=age_days)).timestamp()
        os.utime(path, (ts, ts))
        return path

    stored("staging/demo/run-1/c1.jsonl", 20)
    stored("rejects/demo/run-1/c1.rej", 20)  # rejects are kept 90 days
    stored("staging/demo/run-2/c1.jsonl", 1)

    removed = purge_stored(sftp_store.worker(tmp_path / "w"), "demo", RetentionPeriods(), now)

    assert removed == ["staging/demo/run-1/c1.jsonl"]
    assert sftp_store.stored("staging") == ["staging/demo/run-2/c1.jsonl"]
    assert not (sftp_store.root / "staging" / "demo" / "run-1").exists()  # emptied folder gone
    assert sftp_store.stored("rejects") == ["rejects/demo/run-1/c1.rej"]


def test_an_unsafe_name_in_the_shared_inbox_is_refused_without_being_copied_to_the_worker(
    tmp_path: Path, sftp_store: SftpStore
) -> None:
    records = sample_records(3)
    deliver(sftp_store, records)
    # A leading dash: `rm *` in an operator's shell would read it as options.
    deliver(sftp_store, records, name="-rf.mrc")
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    home = tmp_path / "worker"

    fetched = fetch_to_storage(demo_vendor(), layout(home), sftp_store.worker(home), state)

    assert [f.name for f in fetched.files] == ["delivery.mrc"]
    assert fetched.refused == {"-rf.mrc": "unsafe name: starts with a dash"}
    assert fetched.refused_codes == {"-rf.mrc": "unsafe_name"}
    assert not [p for p in home.rglob("*") if p.name.startswith("-")]
