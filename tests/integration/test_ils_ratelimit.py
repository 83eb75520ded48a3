"""The Redis token bucket: every process books distinct slots at least 1/R apart."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from catalog_sync.ils.errors import ILSUnavailable
from catalog_sync.ils.ratelimit import RedisRateGate
from catalog_sync.services import free_port

pytestmark = pytest.mark.timeout(30)


def test_gates_sharing_a_redis_key_book_slots_spaced_by_the_rate(redis_url: str) -> None:
    rate = 20_000.0  # 50 us apart: the bookings matter here, not the sleeping
    key = f"test:ils_rate:{uuid.uuid4().hex}"

    async def run() -> list[int]:
        # Two gates stand for two worker processes: separate connections, one bucket.
        gates = [RedisRateGate(redis_url, key, rate) for _ in range(2)]
        try:
            booked = await asyncio.gather(*(gates[i % 2].reserve() for i in range(300)))
        finally:
            for gate in gates:
                await gate.aclose()
        return sorted(slot for _wait, slot in booked)

    slots = asyncio.run(run())

    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert len(set(slots)) == 300
    assert min(gaps) >= 50
    Redis.from_url(redis_url).delete(key)


def test_a_burst_allowance_admits_that_many_back_to_back(redis_url: str) -> None:
    key = f"test:ils_rate:{uuid.uuid4().hex}"

    async def run() -> list[float]:
        gate = RedisRateGate(redis_url, key, rate=1.0, burst=5)
        try:
            return [(await gate.reserve())[0] for _ in range(6)]
        finally:
            await gate.aclose()

    waits = asyncio.run(run())

    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0.5
    Redis.from_url(redis_url).delete(key)


def test_an_unreachable_redis_is_reported_as_the_rate_limiter_not_hidden() -> None:
    async def run() -> None:
        gate = RedisRateGate(f"redis://127.0.0.1:{free_port()}/0", "k", 10.0, label="ILS 'x'")
        try:
            await gate.acquire()
        finally:
            await gate.aclose()

    with pytest.raises(ILSUnavailable) as caught:
        asyncio.run(run())
    assert caught.value.reason == "rate_limiter_unavailable" and "ILS 'x'" in str(caught.value)


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a hung Redis."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)  # kept open and never written to

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def test_a_redis_that_never_answers_fails_the_gate_cleanly_instead_of_blocking(
    silent_redis: str,
) -> None:
    async def run() -> None:
        gate = RedisRateGate(silent_redis, "k", 10.0, label="ILS 'x'")
        try:
            # The bound only keeps a regression from hanging the suite; the gate's own socket
            # timeouts must end the call well inside it.
            await asyncio.wait_for(gate.acquire(), timeout=25)
        finally:
            await gate.aclose()

    with pytest.raises(ILSUnavailable) as caught:
        asyncio.run(run())
    assert caught.value.reason == "rate_limiter_unavailable"
    assert "ILS 'x'" in str(caught.value) and "did not answer" in str(caught.value)
