"""A commit process killed at many points, then retried, leaves every change applied exactly once.

Run for each ILS flavour (Koha, FOLIO). The commit runs in its own process (as an Airflow worker
would) against the real emulator and kills itself with SIGKILL at one point: around its N-th
record write as the pipeline sees it (just before the call, or after the ILS acknowledged it but
before the ledger did), or around its N-th write request on the wire (before it is sent, or once
its answer has arrived), which reaches inside a write made of several requests, such as FOLIO's
instance then MARC source record. The retry runs commit_changes again, as Airflow's retry or a
cleared map index does. What the ILS holds, read through its own API, then shows duplicates,
half-made records and gaps.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pymarc
import pytest
from pymarc import Record

from catalog_sync.changes.revert import RevertReport, revert_run
from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.ils.client import ILSClient
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkRef, ChunkReport, CommitReport, LandingFile
from catalog_sync.paths import layout
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.pipeline.process import process_chunk

if TYPE_CHECKING:  # the killed child runs this file as a script, without the tests package
    from tests.end_to_end.ils_under_test import IlsUnderTest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
RECORDS = 20
VENDORS = {"koha": "demo", "folio": "demo_folio"}
# POSTs that read (FOLIO's CQL in a body, SRS's batch fetch) and logins are not writes.
_NOT_WRITES = ("/retrieve", "/fetch", "/authn/", "/oauth/", "/source-storage/snapshots")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingClient:
    """The real client, but the process dies around its N-th record write (SIGKILL: no cleanup)."""

    def __init__(self, inner: ILSClient, kill_at: int, when: str) -> None:
        self.inner = inner
        self.kill_at = kill_at
        self.when = when
        self.counts = {"before_write": 0, "before_ack": 0}

    def _maybe_die(self, moment: str) -> None:
        # Writes run concurrently: count sends and acknowledgements separately.
        self.counts[moment] += 1
        if moment == self.when and self.counts[moment] == self.kill_at:
            _die()

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


def die_around_wire_write(kill_at: int, when: str) -> None:
    """Kill this process around its N-th write request to the ILS, whatever the adapter sends
    (one record or a batch): "before_send" (it never leaves) or "after_answer" (the ILS
    applied it and answered; the answer dies with the process)."""
    send = httpx.AsyncClient.send
    seen = 0

    async def killing_send(self: httpx.AsyncClient, request: httpx.Request, **kw: Any) -> Any:
        nonlocal seen
        path = request.url.path
        write = request.method != "GET" and not any(p in path for p in _NOT_WRITES)
        mine = 0  # this request's ordinal: others are sent while it waits for its answer
        if write:
            seen += 1
            mine = seen
            if mine == kill_at and when == "before_send":
                _die()
        response = await send(self, request, **kw)
        if mine == kill_at and when == "after_answer":
            await response.aread()
            _die()
        return response

    httpx.AsyncClient.send = killing_send  # type: ignore[method-assign]


async def commit(
    chunk: ChunkReport,
    vendor: VendorConfig,
    settings: ILSSettings,
    state_url: str,
    run_id: str,
    kill: tuple[int, str] | None,
) -> CommitReport:
    async with open_client(settings) as real:
        client: Any = real
        if kill is not None and kill[1] in ("before_write", "before_ack"):
            client = KillingClient(real, *kill)
        return await commit_changes(
            chunk.chunk, chunk.staging_path, vendor, client, StateStore(state_url), run_id
        )


def child_main(args: dict[str, Any]) -> None:
    """Entry point of the commit process the test kills (runs this file as a script)."""
    vendor = VendorConfig.model_validate(args["vendor"])
    chunk = ChunkReport.model_validate(args["chunk"])
    settings = ILSSettings.model_validate(args["settings"])
    kill = (args["kill_at"], args["when"])
    if args["when"] in ("before_send", "after_answer"):
        die_around_wire_write(*kill)
    asyncio.run(commit(chunk, vendor, settings, args["state_url"], args["run_id"], kill))


@dataclass
class Scenario:
    home: Path
    vendor: VendorConfig
    ils: IlsUnderTest
    state_url: str

    def stage(self, records: list[Record], run_id: str) -> ChunkReport:
        data = b"".join(r.as_marc() for r in records)
        sha = hashlib.sha256(data).hexdigest()
        path = self.home / "landing" / sha / "delivery.mrc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        landing = LandingFile(
            vendor=self.vendor.name, name="delivery.mrc", path=str(path), sha256=sha,
            size=len(data), format="iso2709",
        )  # fmt: skip
        [ref] = split_file(landing, len(records))
        state = StateStore(self.state_url)
        return process_chunk(
            ChunkRef.model_validate(ref), self.vendor, layout(self.home), state, run_id
        )

    def killed_commit(self, chunk: ChunkReport, run_id: str, kill_at: int, when: str) -> None:
        """Run the commit in its own process, which must die by SIGKILL at the point."""
        args = {
            "vendor": self.vendor.model_dump(mode="json"),
            "chunk": chunk.model_dump(mode="json"),
            "settings": self.ils.settings().model_dump(mode="json"),
            "state_url": self.state_url,
            "run_id": run_id,
            "kill_at": kill_at,
            "when": when,
        }
        proc = subprocess.run(
            [sys.executable, __file__, json.dumps(args)], timeout=120, capture_output=True
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]

    def revert(self, run_id: str) -> RevertReport:
        async def main() -> RevertReport:
            async with open_client(self.ils.settings()) as client:
                clients = {self.vendor.ils_conn_id: client}
                return await revert_run(
                    run_id, self.vendor.name, clients, StateStore(self.state_url)
                )

        return asyncio.run(main())

    def retry(self, chunk: ChunkReport, run_id: str) -> CommitReport:
        settings = self.ils.settings()
        return asyncio.run(commit(chunk, self.vendor, settings, self.state_url, run_id, None))


def loc_records(limit: int = RECORDS) -> list[Record]:
    with SAMPLE.open("rb") as fh:
        return [r for _, r in zip(range(limit), pymarc.MARCReader(fh), strict=False)]


def scenario(tmp_path: Path, ils: IlsUnderTest, name: str) -> Scenario:
    home = tmp_path / name
    home.mkdir()
    vendor = load_vendors()[VENDORS[ils.flavour]].model_copy(update={"records_per_chunk": RECORDS})
    ils.reset()
    return Scenario(home, vendor, ils, f"sqlite:///{home / 'state.db'}")


# (kill_at, when) per flavour. FOLIO writes a batch of records as two requests (their instances,
# then their MARC source records), and how many records share a batch depends on timing: only
# the first two wire writes are sure to happen, and they land between and after the two halves.
CREATE_POINTS = {
    "koha": [(1, "before_write"), (1, "before_ack"), (4, "before_ack"), (9, "before_write"),
             (13, "before_ack"), (20, "before_ack"), (1, "after_answer"), (7, "before_send")],
    "folio": [(1, "before_write"), (1, "before_ack"), (8, "before_ack"), (1, "before_send"),
              (1, "after_answer"), (2, "before_send"), (2, "after_answer")],
}  # fmt: skip
UPDATE_POINTS = {
    "koha": [(1, "before_ack"), (2, "before_write"), (3, "before_ack"), (5, "before_ack"),
             (5, "before_write"), (2, "after_answer")],
    "folio": [(1, "before_ack"), (2, "before_write"), (4, "before_ack"), (1, "after_answer"),
              (2, "before_send"), (2, "after_answer")],
}  # fmt: skip
# Few records on FOLIO: each point is a process start, and the points above already cover
# every step of its two-request writes.
RECORD_COUNT = {"koha": RECORDS, "folio": 8}


def without_match_points(record: Record) -> Record:
    """The record with no number the ILS could match it by (010, 020, 022): only its create
    stamp can tell the retry that the killed attempt already created it."""
    bare = copy.deepcopy(record)
    bare.remove_fields("010", "020", "022")
    return bare


def test_creates_killed_anywhere_are_applied_exactly_once_after_the_retry(
    tmp_path: Path, ils: IlsUnderTest
) -> None:
    count = RECORD_COUNT[ils.flavour]
    records = [without_match_points(r) for r in loc_records(count)]
    numbers = sorted(r["001"].value().strip() for r in records)
    for kill_at, when in CREATE_POINTS[ils.flavour]:
        s = scenario(tmp_path, ils, f"create-{kill_at}-{when}")
        chunk = s.stage(records, "run-1")

        s.killed_commit(chunk, "run-1", kill_at, when)
        retried = s.retry(chunk, "run-1")

        point = f"{ils.flavour}: killed at write {kill_at} {when}"
        assert_created_once(s, chunk, retried, numbers, point)


def assert_created_once(
    s: Scenario, chunk: ChunkReport, retried: CommitReport, numbers: list[str], point: str
) -> None:
    ils = s.ils
    # Each record held once, whole (FOLIO: an instance with its MARC source record).
    assert ils.copies_per_control_number() == Counter(dict.fromkeys(numbers, 1)), point
    # ... created once and never undone: no record was made, dropped and made again.
    held = {h.ils_id for h in ils.held()}
    assert ils.creates_per_record() == Counter(dict.fromkeys(held, 1)), point
    assert ils.bib_deletes() == 0, point
    # Each record counted as created once: by the killed try (acknowledged) or the retry.
    assert retried.created == len(numbers) and retried.matched == 0, point
    writes = len(ils.control.writes())
    again = s.retry(chunk, "run-1")  # a third attempt (Airflow ran it twice) writes nothing
    assert len(ils.control.writes()) == writes, point
    assert again.already_applied == len(numbers), point


def test_a_create_killed_mid_write_is_not_matched_to_its_own_first_half(
    tmp_path: Path, ils: IlsUnderTest
) -> None:
    """With its ISBN/LCCN kept, the record's interrupted first try is findable by matching
    too; the retry must still finish its own create, not update it as a matched copy."""
    records = loc_records(6)
    numbers = sorted(r["001"].value().strip() for r in records)
    for kill_at, when in UNACKNOWLEDGED_POINTS[ils.flavour][:2]:
        s = scenario(tmp_path, ils, f"matchable-{kill_at}-{when}")
        chunk = s.stage(records, "run-1")

        s.killed_commit(chunk, "run-1", kill_at, when)
        retried = s.retry(chunk, "run-1")

        point = f"{ils.flavour}: killed at write {kill_at} {when}"
        assert retried.review == 0, (point, retried.reviews)
        assert_created_once(s, chunk, retried, numbers, point)


def test_updates_killed_anywhere_are_applied_exactly_once_after_the_retry(
    tmp_path: Path, ils: IlsUnderTest
) -> None:
    count = RECORD_COUNT[ils.flavour]
    records = loc_records(count)
    changed = [copy.deepcopy(r) for r in records]
    revised = {}
    for i in range(0, count, 4 if count > 10 else 2):  # a quarter or half get a new title
        changed[i]["245"]["a"] = f"Revised title {i}"
        revised[changed[i]["001"].value().strip()] = f"Revised title {i}"
    for kill_at, when in UPDATE_POINTS[ils.flavour]:
        s = scenario(tmp_path, ils, f"update-{kill_at}-{when}")
        s.retry(s.stage(records, "run-1"), "run-1")
        loaded = ils.catalog()
        seq = max((w["seq"] for w in ils.control.writes()), default=0)
        chunk = s.stage(changed, "run-2")

        s.killed_commit(chunk, "run-2", kill_at, when)
        s.retry(chunk, "run-2")

        point = f"{ils.flavour}: killed at write {kill_at} {when}"
        held = ils.held()
        assert len(held) == count and set(loaded) == {h.ils_id for h in held}, point
        for h in held:  # no gap: every changed record holds its change, no other changed
            title = next(f for f in h.fields or () if f.startswith("=245"))
            want = revised.get(h.control_number or "")
            assert (want in title) if want else (h.fields == loaded[h.ils_id]), (point, h)
        # Each changed record's MARC written once (Koha's biblio PUT, FOLIO's SRS update).
        marc = [w for w in ils.bib_writes() if w["seq"] > seq and _is_marc_write(ils, w)]
        assert len(marc) == len(revised), point
        assert len({w["record_id"] for w in marc}) == len(revised), point
        assert s.retry(chunk, "run-2").already_applied == len(revised), point


# Killed once the ILS saved (part of) a create whose acknowledgement never came.
UNACKNOWLEDGED_POINTS = {
    "koha": [(1, "after_answer"), (3, "after_answer"), (6, "before_send")],
    "folio": [(1, "after_answer"), (2, "after_answer"), (2, "before_send")],
}


def test_a_run_killed_mid_create_is_reverted_to_an_empty_catalog(
    tmp_path: Path, ils: IlsUnderTest
) -> None:
    records = [without_match_points(r) for r in loc_records(6)]
    for kill_at, when in UNACKNOWLEDGED_POINTS[ils.flavour]:
        s = scenario(tmp_path, ils, f"revert-{kill_at}-{when}")
        s.killed_commit(s.stage(records, "run-1"), "run-1", kill_at, when)
        if when == "after_answer":  # (requests in flight at a kill may or may not land)
            assert ils.held(), "the ILS answered a write of the killed try"

        report = s.revert("run-1")

        point = f"{ils.flavour}: killed at write {kill_at} {when}"
        # Nothing of the run is left: no record, whole or half-made (FOLIO: no instance).
        assert ils.held() == [], (point, report.line())
        assert not report.kept, (point, report.line())
        writes = len(ils.control.writes())
        s.revert("run-1")  # again: nothing left to do
        assert len(ils.control.writes()) == writes, point


def _is_marc_write(ils: IlsUnderTest, write: dict[str, Any]) -> bool:
    if ils.flavour == "folio":
        return bool(write["resource"] == "srs_record")
    return bool(write["method"] == "PUT")


if __name__ == "__main__":
    child_main(json.loads(sys.argv[1]))
