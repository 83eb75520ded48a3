"""Two feeds committing the same 100 records at once: without leases updates are lost, with none."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import httpx
import pytest
from pymarc import Record, record_to_xml
from tests.end_to_end.test_concurrent_runs import (
    DEFAULT_PROTECTED,
    LINK,
    NOTE,
    shared_records,
    vendor_a_edition,
    vendor_b_edition,
)

from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.leases import LeaseManager
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkReport, LandingFile
from catalog_sync.paths import layout
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.pipeline.process import process_chunk
from catalog_sync.services import ServiceProcess, start_emulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SPAWN = multiprocessing.get_context("spawn")
LOGIN = ("catalog", "catalog-demo")  # the Koha emulator's default user
SHARED = 100  # records both feeds enrich


def seed_catalog(url: str, records: list[Record]) -> None:
    """The library's catalog already holds the records both feeds enrich."""

    async def main() -> None:
        settings = ILSSettings(base_url=url, username=LOGIN[0], password=LOGIN[1])
        async with open_client(settings) as client:
            for n, record in enumerate(records):
                xml = record_to_xml(record, namespace=True)
                await client.create_biblio(xml, correlation_id=f"seed-{n}")

    asyncio.run(main())


def feed(name: str, protect: str) -> VendorConfig:
    return load_vendors()["demo"].model_copy(
        update={"name": name, "protected_fields": [*DEFAULT_PROTECTED, protect]}
    )


def stage(
    home: Path, vendor: VendorConfig, records: list[Record], state: StateStore
) -> ChunkReport:
    data = b"".join(r.as_marc() for r in records)
    sha = hashlib.sha256(data).hexdigest()
    path = home / "landing" / sha / f"{vendor.name}.mrc"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    landing = LandingFile(
        vendor=vendor.name, name=path.name, path=str(path), sha256=sha,
        size=len(data), format="iso2709",
    )  # fmt: skip
    (ref,) = split_file(landing, vendor.records_per_chunk)
    return process_chunk(ref, vendor, layout(home), state, f"run-{vendor.name}")


def committer(
    ils_url: str,
    redis_url: str | None,
    state_url: str,
    vendor: VendorConfig,
    chunk: ChunkReport,
    ready: Barrier,
) -> None:
    """One feed's commit_changes in its own process, started together with the other's."""

    async def main() -> None:
        settings = ILSSettings(base_url=ils_url, username=LOGIN[0], password=LOGIN[1])
        async with open_client(settings) as client:
            state = StateStore(state_url)
            run_id = f"run-{vendor.name}"
            # Both feeds start committing at the same moment, once both processes have imported
            # and connected: a signal set as they were spawned let the first finish alone.
            ready.wait(120)
            if redis_url is None:
                await commit_changes(chunk.chunk, chunk.staging_path, vendor, client, state, run_id)
                return
            async with LeaseManager.from_url(redis_url) as leases:
                await commit_changes(
                    chunk.chunk, chunk.staging_path, vendor, client, state, run_id, leases=leases
                )

    asyncio.run(main())


def both_changes_kept(home: Path, redis_url: str | None) -> int:
    """Seed a fresh catalog, commit both feeds at once, count records carrying both changes."""
    home.mkdir()
    ils: ServiceProcess = start_emulator(home, db=home / "emulator.db")
    try:
        records = shared_records(SHARED)
        seed_catalog(ils.url, records)

        # A state store per feed: one shared SQLite file makes one feed wait on the other's
        # write lock, which can serialize the two commits and hide the race under test.
        def state_url(vendor: VendorConfig) -> str:
            return f"sqlite:///{home / f'state-{vendor.name}.db'}"

        feeds = [
            (feed("lease_a", "856"), [vendor_a_edition(r) for r in records]),
            (feed("lease_b", "500"), [vendor_b_edition(r) for r in records]),
        ]
        staged = [
            (vendor, stage(home, vendor, edition, StateStore(state_url(vendor))))
            for vendor, edition in feeds
        ]
        ready = SPAWN.Barrier(len(staged))
        # A busy ILS (every request worked on for 0.3 s before it is applied): the reads of
        # both feeds land before either's writes, however late the second process is
        # scheduled, so without leases the race happens every time, not by luck of timing.
        control = EmulatorControl(ils.url)
        control.set_faults(slow_rate=1.0, slow_seconds=0.3)
        procs = [
            SPAWN.Process(
                target=committer,
                args=(ils.url, redis_url, state_url(vendor), vendor, chunk, ready),
            )
            for vendor, chunk in staged
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(180)
        control.clear_faults()
        assert [p.exitcode for p in procs] == [0, 0]
        kept = 0
        for biblio in control.biblios():
            stored = httpx.get(
                f"{ils.url}/api/v1/biblios/{biblio['biblio_id']}",
                headers={"Accept": "application/marcxml+xml"},
                auth=LOGIN,
                timeout=10,
            ).content
            link = (LINK + biblio["control_number"]).encode()
            kept += NOTE.encode() in stored and link in stored
        return kept
    finally:
        ils.stop()


def test_without_leases_the_two_feeds_lose_updates_and_with_leases_none(
    tmp_path: Path, redis_url: str
) -> None:
    # The race is real: unguarded read-merge-writes of the two feeds overwrite each other.
    assert both_changes_kept(tmp_path / "unguarded", None) < len(shared_records(SHARED))
    assert both_changes_kept(tmp_path / "leased", redis_url) == len(shared_records(SHARED))
