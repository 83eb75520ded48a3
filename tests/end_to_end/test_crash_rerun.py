"""A commit process killed at many points, then retried, leaves every change applied exactly once.

The commit runs in its own process (as an Airflow worker would) against the real emulator and
kills itself with SIGKILL around its N-th ILS write: just before sending it, or after the ILS
acknowledged it but before the ledger did. The retry runs commit_changes again, as Airflow's
retry or a cleared map index does. The emulator's write log then shows duplicates and gaps.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymarc
import pytest
from pymarc import Record

from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.ils.client import ILSClient
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport, LandingFile
from catalog_sync.paths import layout
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.pipeline.process import process_chunk
from catalog_sync.services import ServiceProcess, start_emulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
USER, PASSWORD = "catalog", "catalog-demo"
RECORDS = 20


class KillingClient:
    """The real Koha client, but the process dies around its N-th write (SIGKILL: no cleanup)."""

    def __init__(self, inner: ILSClient, kill_at: int, when: str) -> None:
        self.inner = inner
        self.kill_at = kill_at
        self.when = when
        self.counts = {"before_write": 0, "before_ack": 0}

    def _maybe_die(self, moment: str) -> None:
        # Writes run concurrently: count sends and acknowledgements separately.
        self.counts[moment] += 1
        if moment == self.when and self.counts[moment] == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    async def _write(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        self._maybe_die("before_write")
        result = await call(*args, **kwargs)
        self._maybe_die("before_ack")
        return result

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        result: str = await self._write(
            self.inner.create_biblio, marcxml, correlation_id=correlation_id
        )
        return result

    async def update_biblio(self, biblio_id: str, marcxml: bytes, *, correlation_id: str) -> None:
        await self._write(
            self.inner.update_biblio, biblio_id, marcxml, correlation_id=correlation_id
        )

    async def delete_biblio(self, biblio_id: str, *, correlation_id: str) -> None:
        await self._write(self.inner.delete_biblio, biblio_id, correlation_id=correlation_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def settings(url: str) -> ILSSettings:
    return ILSSettings(name="ils_test", base_url=url, username=USER, password=PASSWORD)


async def commit(
    chunk: ChunkReport, vendor: VendorConfig, url: str, state_url: str, run_id: str, kill: Any
) -> CommitReport:
    async with open_client(settings(url)) as real:
        client: Any = KillingClient(real, *kill) if kill else real
        return await commit_changes(
            chunk.chunk, chunk.staging_path, vendor, client, StateStore(state_url), run_id
        )


def child_main(args: dict[str, Any]) -> None:
    """Entry point of the commit process the test kills (runs this file as a script)."""
    vendor = VendorConfig.model_validate(args["vendor"])
    chunk = ChunkReport.model_validate(args["chunk"])
    kill = (args["kill_at"], args["when"])
    asyncio.run(commit(chunk, vendor, args["url"], args["state_url"], args["run_id"], kill))


@dataclass
class Scenario:
    home: Path
    vendor: VendorConfig
    url: str
    state_url: str

    def stage(self, records: list[Record], run_id: str) -> ChunkReport:
        data = b"".join(r.as_marc() for r in records)
        sha = hashlib.sha256(data).hexdigest()
        path = self.home / "landing" / sha / "delivery.mrc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        landing = LandingFile(
            vendor="demo", name="delivery.mrc", path=str(path), sha256=sha, size=len(data),
            format="iso2709",
        )  # fmt: skip
        [ref] = split_file(landing, RECORDS)
        state = StateStore(self.state_url)
        return process_chunk(
            ChunkRef.model_validate(ref), self.vendor, layout(self.home), state, run_id
        )

    def killed_commit(self, chunk: ChunkReport, run_id: str, kill_at: int, when: str) -> int:
        args = {
            "vendor": self.vendor.model_dump(mode="json"),
            "chunk": chunk.model_dump(mode="json"),
            "url": self.url,
            "state_url": self.state_url,
            "run_id": run_id,
            "kill_at": kill_at,
            "when": when,
        }
        proc = subprocess.run(
            [sys.executable, __file__, json.dumps(args)], timeout=120, capture_output=True
        )
        return proc.returncode

    def retry(self, chunk: ChunkReport, run_id: str) -> CommitReport:
        return asyncio.run(commit(chunk, self.vendor, self.url, self.state_url, run_id, None))


@pytest.fixture(scope="module")
def ils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = start_emulator(tmp_path_factory.mktemp("ils"), db=None)
    yield proc
    proc.stop()


def loc_records() -> list[Record]:
    with SAMPLE.open("rb") as fh:
        return [r for _, r in zip(range(RECORDS), pymarc.MARCReader(fh), strict=False)]


def scenario(tmp_path: Path, ils: ServiceProcess, name: str) -> Scenario:
    home = tmp_path / name
    home.mkdir()
    vendor = load_vendors()["demo"].model_copy(update={"records_per_chunk": RECORDS})
    EmulatorControl(ils.url).reset()
    return Scenario(home, vendor, ils.url, f"sqlite:///{home / 'state.db'}")


CREATE_POINTS = [(1, "before_write"), (1, "before_ack"), (4, "before_ack"), (9, "before_write"),
                 (13, "before_ack"), (20, "before_ack")]  # fmt: skip
UPDATE_POINTS = [(1, "before_ack"), (2, "before_write"), (3, "before_ack"), (5, "before_ack"),
                 (5, "before_write")]  # fmt: skip


def without_match_points(record: Record) -> Record:
    """The record with no number Koha could match it by (010, 020, 022): only its create
    stamp can tell the retry that the killed attempt already created it."""
    bare = copy.deepcopy(record)
    bare.remove_fields("010", "020", "022")
    return bare


def test_creates_killed_anywhere_are_applied_exactly_once_after_the_retry(
    tmp_path: Path, ils: ServiceProcess
) -> None:
    records = [without_match_points(r) for r in loc_records()]
    numbers = sorted(r["001"].value().strip() for r in records)
    for kill_at, when in CREATE_POINTS:
        s = scenario(tmp_path, ils, f"create-{kill_at}-{when}")
        chunk = s.stage(records, "run-1")
        control = EmulatorControl(ils.url)

        assert s.killed_commit(chunk, "run-1", kill_at, when) == -signal.SIGKILL
        before_retry = len(control.writes())
        retried = s.retry(chunk, "run-1")

        point = f"killed at write {kill_at} {when}"
        writes = control.writes()
        assert len(writes) >= before_retry, point
        assert control.creates_per_control_number() == Counter(dict.fromkeys(numbers, 1)), point
        assert {w["method"] for w in writes} == {"POST"}, point
        assert sorted(b["control_number"] for b in control.biblios()) == numbers, point
        # Each record counted as created once: by the killed try (acknowledged) or the retry.
        assert retried.created == RECORDS and retried.matched == 0, point
        again = s.retry(chunk, "run-1")  # a third attempt (Airflow ran it twice) writes nothing
        assert len(control.writes()) == len(writes), point
        assert again.already_applied == RECORDS, point


def test_updates_killed_anywhere_are_applied_exactly_once_after_the_retry(
    tmp_path: Path, ils: ServiceProcess
) -> None:
    records = loc_records()
    changed = [copy.deepcopy(r) for r in records]
    for i in range(0, RECORDS, 4):  # five records get a new title
        changed[i]["245"]["a"] = f"Revised title {i}"
    for kill_at, when in UPDATE_POINTS:
        s = scenario(tmp_path, ils, f"update-{kill_at}-{when}")
        control = EmulatorControl(ils.url)
        s.retry(s.stage(records, "run-1"), "run-1")
        loaded = {b["control_number"]: b["biblio_id"] for b in control.biblios()}
        seq = len(control.writes())
        chunk = s.stage(changed, "run-2")

        assert s.killed_commit(chunk, "run-2", kill_at, when) == -signal.SIGKILL
        s.retry(chunk, "run-2")

        point = f"killed at write {kill_at} {when}"
        writes = control.writes()[seq:]
        expected = sorted(loaded[changed[i]["001"].value().strip()] for i in range(0, RECORDS, 4))
        assert sorted(w["record_id"] for w in writes) == expected, point
        assert {w["method"] for w in writes} == {"PUT"}, point
        stored = {b["biblio_id"]: b["payload_sha256"] for b in control.biblios()}
        assert len(stored) == RECORDS, point
        # No gap: each changed record holds the payload of its one PUT.
        assert all(stored[w["record_id"]] == w["payload_sha256"] for w in writes), point
        assert s.retry(chunk, "run-2").already_applied == 5, point


if __name__ == "__main__":
    child_main(json.loads(sys.argv[1]))
