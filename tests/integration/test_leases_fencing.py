"""Fencing: a lease holder paused past its TTL cannot write once another holder has taken over."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pymarc
import pytest
import redis
from pymarc import Field, Indicators, Record, Subfield, record_to_xml

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, KohaAdapter
from catalog_sync.leases import (
    LeaseLost,
    LeaseManager,
    LeaseSettings,
    record_scope,
)
from catalog_sync.services import ServiceProcess

# Past the 180 s the paused holder's spawned interpreter may take to import the whole stack on
# a loaded machine (make test runs the deployment tests beside this one): a hang guard only.
pytestmark = pytest.mark.timeout(300)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
SPAWN = multiprocessing.get_context("spawn")
TTL = 1.0


def settings(url: str) -> ILSSettings:
    return ILSSettings(
        name="ils_test", base_url=url, username="catalog", password="catalog-demo",
        timeout=10.0, max_attempts=1,
    )  # fmt: skip


def edition(note: str) -> bytes:
    """The sample's first record with a note of our own, as the MARCXML a holder writes."""
    with SAMPLE.open("rb") as fh:
        record: Record = next(r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None)
    record.add_ordered_field(
        Field(tag="500", indicators=Indicators(" ", " "), subfields=[Subfield("a", note)])
    )
    xml: bytes = record_to_xml(record, namespace=True)
    return xml


def paused_writer(redis_url: str, ils_url: str, key: str, biblio_id: str, outbox: Any) -> None:
    """Hold the record's lease, pass the Redis check, then stop (SIGSTOP) just before the PUT."""

    async def stop_before_put(request: httpx.Request) -> None:
        if request.method == "PUT":
            os.kill(os.getpid(), signal.SIGSTOP)  # a GC pause / page-fault storm, made exact

    async def main() -> None:
        http = httpx.AsyncClient(
            base_url=ils_url, timeout=10.0, event_hooks={"request": [stop_before_put]}
        )
        adapter = KohaAdapter(settings(ils_url), http=http)
        async with (
            adapter,
            LeaseManager.from_url(redis_url, LeaseSettings(ttl=TTL)) as leases,
            leases.hold([key]) as lease,
        ):
            outbox.send(("held", lease.fences[key]))
            try:
                await adapter.update_biblio(
                    biblio_id, edition("from the paused holder"), correlation_id="paused-holder"
                )
                outbox.send(("written", ""))
            except Exception as exc:
                outbox.send(("refused", f"{type(exc).__name__}: {exc}"))

    asyncio.run(main())


def seed(url: str) -> str:
    async def main() -> str:
        async with KohaAdapter(settings(url)) as adapter:
            return await adapter.create_biblio(edition("as loaded"), correlation_id="seed")

    return asyncio.run(main())


def receive(inbox: Any, timeout: float) -> Any:
    assert inbox.poll(timeout), f"the holder sent nothing within {timeout:.0f} s"
    return inbox.recv()


def stopped(pid: int) -> bool:
    # /proc/<pid>/stat: "pid (comm) state ..."; T is stopped by a signal.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def test_a_holder_paused_past_its_ttl_is_fenced_off_when_it_resumes(
    redis_url: str, emulator: ServiceProcess, request: pytest.FixtureRequest
) -> None:
    control = EmulatorControl(emulator.url)
    biblio_id = seed(emulator.url)
    key = record_scope(f"test-{request.node.name}-{os.getpid()}", "DLC|fenced")
    # A pipe, not a Queue: Queue.put hands the message to a feeder thread, and the holder's
    # SIGSTOP can freeze that thread before it writes, so "held" would never arrive.
    inbox, outbox = SPAWN.Pipe(duplex=False)
    holder = SPAWN.Process(
        target=paused_writer, args=(redis_url, emulator.url, key, biblio_id, outbox)
    )
    holder.start()
    try:
        # Generous: a spawned interpreter imports the whole stack, slow on a loaded machine.
        kind, old_fence = receive(inbox, timeout=180)
        assert kind == "held"
        deadline = time.monotonic() + 30
        while not stopped(holder.pid or 0):
            assert time.monotonic() < deadline, "the holder never reached its write"
            time.sleep(0.02)

        # While it sleeps its lease runs out; a second holder takes the record and writes.
        async def take_over() -> int:
            async with (
                KohaAdapter(settings(emulator.url)) as adapter,
                LeaseManager.from_url(redis_url, LeaseSettings(ttl=10.0, wait=TTL + 5)) as leases,
                leases.hold([key]) as lease,
            ):
                await adapter.update_biblio(
                    biblio_id, edition("from the new holder"), correlation_id="new-holder"
                )
                return lease.fences[key]

        new_fence = asyncio.run(take_over())
        assert new_fence > old_fence
    finally:
        os.kill(holder.pid or 0, signal.SIGCONT)
    outcome, detail = receive(inbox, timeout=30)
    holder.join(30)

    assert outcome == "refused"
    assert detail.startswith("ILSFencedOff")
    puts = [w for w in control.writes() if w["method"] == "PUT"]
    assert [w["request_id"] for w in puts] == ["new-holder"]
    assert control.counters()["fenced_writes"] == 1
    stored = httpx.get(
        f"{emulator.url}/api/v1/biblios/{biblio_id}",
        headers={"Accept": "application/marcxml+xml"},
        auth=("catalog", "catalog-demo"),
        timeout=10,
    ).content
    assert b"from the new holder" in stored
    assert b"from the paused holder" not in stored


def test_a_holder_whose_lease_was_taken_over_is_stopped_by_the_redis_check_before_sending(
    redis_url: str, emulator: ServiceProcess, request: pytest.FixtureRequest
) -> None:
    control = EmulatorControl(emulator.url)
    biblio_id = seed(emulator.url)
    key = record_scope(f"test-{request.node.name}-{os.getpid()}", "DLC|checked")
    plain = redis.Redis.from_url(redis_url)

    async def main() -> None:
        async with (
            KohaAdapter(settings(emulator.url)) as adapter,
            LeaseManager.from_url(redis_url, LeaseSettings(ttl=10.0)) as leases,
            leases.hold([key]),
        ):
            plain.set(key, "another-holder", px=10_000)
            await adapter.update_biblio(
                biblio_id, edition("after losing the lease"), correlation_id="lost-holder"
            )

    with pytest.raises(LeaseLost):
        asyncio.run(main())
    assert [w["method"] for w in control.writes()] == ["POST"]  # the seed only
    assert control.counters().get("fenced_writes", 0) == 0  # refused before reaching the ILS
    plain.delete(key)
