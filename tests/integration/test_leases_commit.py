"""commit_changes under record leases, on the real emulator and a real Redis."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import pymarc
import pytest
import redis
from pymarc import Record

from catalog_sync.changes.state import StateStore, idempotency_key
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.leases import (
    LeaseManager,
    LeaseSettings,
    LeaseStoreUnavailable,
    LeaseTimeout,
    UnleasedRecords,
    branch_scope,
    holdings_scope,
    record_scope,
)
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkReport, CommitReport, LandingFile
from catalog_sync.paths import layout
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.pipeline.process import process_chunk, read_staged
from catalog_sync.services import ServiceProcess

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
FAST = LeaseSettings(ttl=2.0, wait=0.5, poll=0.02)


def sample_records(n: int) -> list[Record]:
    with SAMPLE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None]
    return [copy.deepcopy(r) for r in records[:n]]


@dataclass
class Chunk:
    """One vendor delivery staged by process_chunk, ready for commit_changes."""

    home: Path
    vendor: VendorConfig
    state: StateStore
    ils_url: str
    report: ChunkReport

    @classmethod
    def staged(
        cls, home: Path, ils_url: str, records: list[Record], after: Chunk | None = None
    ) -> Chunk:
        """A delivery of `records`; with `after`, the next delivery of that one's feed."""
        # A connection id of its own: lease keys and state rows never meet other tests'.
        vendor = load_vendors()["demo"].model_copy(
            update={"ils_conn_id": f"ils_{uuid.uuid4().hex[:8]}", "records_per_chunk": 100}
        )
        home.mkdir(parents=True, exist_ok=True)
        state = StateStore(f"sqlite:///{home / 'state.db'}")
        if after is not None:
            vendor, state = after.vendor, after.state
        data = b"".join(r.as_marc() for r in records)
        sha = hashlib.sha256(data).hexdigest()
        path = home / "landing" / sha / "delivery.mrc"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        landing = LandingFile(
            vendor=vendor.name, name=path.name, path=str(path), sha256=sha,
            size=len(data), format="iso2709",
        )  # fmt: skip
        (ref,) = split_file(landing, vendor.records_per_chunk)
        report = process_chunk(ref, vendor, layout(home), state, "run-1")
        return cls(home, vendor, state, ils_url, report)

    def record_keys(self) -> list[str]:
        return sorted(c.record_key for c in read_staged(self.report.staging_path))

    def commit(self, redis_url: str, settings: LeaseSettings = FAST) -> CommitReport:
        async def main() -> CommitReport:
            ils = ILSSettings(
                name="ils_test", base_url=self.ils_url, username="catalog",
                password="catalog-demo", timeout=10.0, retry_deadline=30.0,
            )  # fmt: skip
            async with (
                open_client(ils) as client,
                LeaseManager.from_url(redis_url, settings) as leases,
            ):
                return await commit_changes(
                    self.report.chunk, self.report.staging_path, self.vendor, client,
                    self.state, "run-1", leases=leases,
                )  # fmt: skip

        return asyncio.run(main())


@pytest.fixture
def control(emulator: ServiceProcess) -> EmulatorControl:
    return EmulatorControl(emulator.url)


def test_a_chunk_committed_under_leases_writes_each_record_once_and_leaves_no_lease_held(
    tmp_path: Path, emulator: ServiceProcess, control: EmulatorControl, redis_url: str
) -> None:
    chunk = Chunk.staged(tmp_path, emulator.url, sample_records(20))

    report = chunk.commit(redis_url)

    assert report.created == 20
    assert set(control.creates_per_control_number().values()) == {1}
    plain = redis.Redis.from_url(redis_url)
    held = [k for k in plain.scan_iter(f"catalog_sync:lease:{chunk.vendor.ils_conn_id}:*")]
    assert held and all(k.endswith(b":fence") for k in held)  # only the fencing counters stay


def test_a_record_whose_lease_stays_busy_is_left_pending_and_written_by_the_retry(
    tmp_path: Path, emulator: ServiceProcess, control: EmulatorControl, redis_url: str
) -> None:
    chunk = Chunk.staged(tmp_path, emulator.url, sample_records(10))
    busy_key = chunk.record_keys()[3]
    busy = record_scope(chunk.vendor.ils_conn_id, busy_key)
    plain = redis.Redis.from_url(redis_url)
    plain.set(busy, "another-run", px=30_000)

    with pytest.raises(UnleasedRecords, match="1 record"):
        chunk.commit(redis_url)

    assert len(control.writes()) == 9
    ledger = {
        c.record_key: chunk.state.ledger_entry(
            idempotency_key(chunk.vendor.ils_conn_id, c.record_key, c.fingerprint, c.action.value)
        )
        for c in read_staged(chunk.report.staging_path)
    }
    assert ledger.pop(busy_key) is None  # never started: nothing acknowledged
    assert {e.status if e else None for e in ledger.values()} == {"applied"}

    plain.delete(busy)  # the other run finished
    retry = chunk.commit(redis_url)

    # The nine written by the first try still count as created: the report adds up.
    assert (retry.created, retry.already_applied) == (10, 9)
    assert sorted(control.creates_per_control_number().values()) == [1] * 10


def test_redis_down_stops_the_commit_with_an_error_naming_redis_and_nothing_is_written(
    tmp_path: Path, emulator: ServiceProcess, control: EmulatorControl
) -> None:
    chunk = Chunk.staged(tmp_path, emulator.url, sample_records(5))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"

    with pytest.raises(LeaseStoreUnavailable, match="Redis at 127") as exc:
        chunk.commit(dead)

    assert exc.value.reason == "redis_unavailable"
    assert control.writes() == []


def test_records_whose_lease_runs_out_mid_record_are_not_written_and_the_retry_writes_them(
    tmp_path: Path, emulator: ServiceProcess, control: EmulatorControl, redis_url: str
) -> None:
    records = sample_records(5)
    loaded = Chunk.staged(tmp_path / "first", emulator.url, records)
    loaded.commit(redis_url)
    changed = copy.deepcopy(records)
    for record in changed:
        record["245"]["a"] = "Retitled by the vendor"
    chunk = Chunk.staged(tmp_path / "second", emulator.url, changed, after=loaded)
    seq = len(control.writes())
    # Every ILS answer (the read of the ILS copy under the lease included) takes longer than
    # the lease lives, and nothing renews it.
    control.set_faults(slow_rate=1.0, slow_seconds=0.8)
    expiring = LeaseSettings(ttl=0.3, wait=5.0, renew_every=60.0, poll=0.02)

    with pytest.raises(UnleasedRecords, match="lease_lost"):
        chunk.commit(redis_url, expiring)

    assert control.writes()[seq:] == []  # each holder found its lease gone before writing
    control.clear_faults()
    retry = chunk.commit(redis_url)
    assert retry.updated == 5
    assert sorted(w["method"] for w in control.writes()[seq:]) == ["PUT"] * 5


def test_a_vendor_with_a_branch_lease_waits_for_another_feed_of_that_branch(
    tmp_path: Path, emulator: ServiceProcess, control: EmulatorControl, redis_url: str
) -> None:
    chunk = Chunk.staged(tmp_path, emulator.url, sample_records(5))
    chunk.vendor = chunk.vendor.model_copy(update={"lease_branch": "MAIN"})
    branch = branch_scope(chunk.vendor.ils_conn_id, "MAIN")
    plain = redis.Redis.from_url(redis_url)
    plain.set(branch, "another-feed-of-MAIN", px=30_000)

    with pytest.raises(LeaseTimeout, match="branch:MAIN"):
        chunk.commit(redis_url)
    assert control.writes() == []

    plain.delete(branch)
    assert chunk.commit(redis_url).created == 5
    assert plain.exists(branch) == 0


def test_a_record_matched_in_the_ils_also_waits_for_that_biblios_holdings_lease(
    tmp_path: Path, emulator: ServiceProcess, control: EmulatorControl, redis_url: str
) -> None:
    records = sample_records(1)
    first = Chunk.staged(tmp_path / "first", emulator.url, records)
    first.commit(redis_url)  # already in the catalog, loaded under another record key's state
    (biblio,) = control.biblios()
    chunk = Chunk.staged(tmp_path / "second", emulator.url, records)  # a create that will match
    holdings = holdings_scope(chunk.vendor.ils_conn_id, str(biblio["biblio_id"]))
    plain = redis.Redis.from_url(redis_url)
    plain.set(holdings, "items-being-edited", px=30_000)

    with pytest.raises(UnleasedRecords, match="lease_timeout"):
        chunk.commit(redis_url)
    assert [w["method"] for w in control.writes()] == ["POST"]

    plain.delete(holdings)
    report = chunk.commit(redis_url)
    assert report.matched == 1
