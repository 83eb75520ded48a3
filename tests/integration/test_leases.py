"""Record leases against a real Redis: ownership, renewal, ordered acquisition and fencing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
import redis

from catalog_sync.leases import (
    FENCE_HEADER,
    LeaseLost,
    LeaseManager,
    LeaseSettings,
    LeaseStoreUnavailable,
    LeaseTimeout,
    branch_scope,
    current_lease,
    holdings_scope,
    record_scope,
)

pytestmark = pytest.mark.timeout(30)

T = TypeVar("T")

FAST = LeaseSettings(ttl=0.6, wait=2.0, poll=0.02)


@pytest.fixture
def scope(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Lease keys private to one test, so tests sharing the session's Redis never meet."""
    return lambda key: record_scope(f"test-{request.node.name}", key)


def run(
    redis_url: str, body: Callable[[LeaseManager], Awaitable[T]], settings: LeaseSettings = FAST
) -> T:
    async def main() -> T:
        async with LeaseManager.from_url(redis_url, settings) as leases:
            return await body(leases)

    return asyncio.run(main())


def test_a_held_key_is_not_given_to_a_second_holder_until_released(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    key = scope("DLC|00000001")

    async def body(leases: LeaseManager) -> list[str]:
        events: list[str] = []

        async def second() -> None:
            async with leases.hold([key]):
                events.append("second in")

        async with leases.hold([key]):
            events.append("first in")
            waiter = asyncio.create_task(second())
            await asyncio.sleep(0.2)
            events.append("first out")
        await waiter
        return events

    assert run(redis_url, body) == ["first in", "first out", "second in"]


def test_renewal_keeps_the_lease_past_its_ttl_while_the_holder_works(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    key = scope("renewed")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> tuple[bool, dict[str, str]]:
        async with leases.hold([key]) as lease:
            await asyncio.sleep(FAST.ttl * 3)
            return plain.exists(key) == 1, await lease.before_write()

    still_there, header = run(redis_url, body)
    assert still_there
    assert header[FENCE_HEADER].startswith(f"{key}=")
    assert plain.exists(key) == 0  # released on exit


def test_a_token_overwritten_by_another_holder_makes_the_next_write_check_fail(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    key = scope("taken-over")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> str:
        async with leases.hold([key]) as lease:
            plain.set(key, "someone-else", px=5000)
            with pytest.raises(LeaseLost) as lost:
                await lease.before_write()
            return str(lost.value)

    message = run(redis_url, body)
    assert key in message
    assert plain.get(key) == b"someone-else"  # our release did not delete another's lease


def test_renewal_that_finds_the_lease_gone_marks_it_lost_before_any_write_check(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    key = scope("expired")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> bool:
        async with leases.hold([key]) as lease:
            plain.delete(key)
            await asyncio.sleep(FAST.renew_interval * 2)
            with pytest.raises(LeaseLost):
                lease.ensure_held()  # no Redis call: the renewal task already knew
            return lease.lost

    assert run(redis_url, body)


def test_fencing_tokens_grow_with_every_new_holder_of_a_key(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    key = scope("fenced")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> list[int]:
        tokens = []
        for _ in range(3):
            async with leases.hold([key]) as lease:
                tokens.append(lease.fences[key])
        plain.delete(f"{key}:fence")  # counter expired or Redis restarted empty
        async with leases.hold([key]) as lease:
            tokens.append(lease.fences[key])
        return tokens

    tokens = run(redis_url, body)
    assert tokens[1] == tokens[0] + 1
    assert tokens[2] == tokens[1] + 1
    assert tokens[3] > tokens[2]


def test_keys_are_taken_in_sorted_order_so_crossed_requests_do_not_deadlock(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    a, b = scope("a"), scope("b")

    async def body(leases: LeaseManager) -> int:
        done = 0

        async def holder(keys: list[str]) -> None:
            nonlocal done
            for _ in range(10):
                async with leases.hold(keys):
                    await asyncio.sleep(0.005)
                    done += 1

        await asyncio.gather(holder([a, b]), holder([b, a]))
        return done

    assert run(redis_url, body) == 20


def test_a_key_held_past_the_wait_times_out_and_releases_what_was_taken(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    first, busy = scope("1-free"), scope("2-busy")
    plain = redis.Redis.from_url(redis_url)
    plain.set(busy, "another-run", px=10_000)
    settings = LeaseSettings(ttl=5.0, wait=0.3, poll=0.02)

    async def body(leases: LeaseManager) -> None:
        async with leases.hold([busy, first]):
            raise AssertionError("a busy key was handed out")

    with pytest.raises(LeaseTimeout, match="2-busy"):
        run(redis_url, body, settings)
    assert plain.exists(first) == 0
    plain.delete(busy)


def test_the_held_lease_is_seen_by_tasks_started_inside_the_block_and_not_after(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    key = scope("context")

    async def body(leases: LeaseManager) -> tuple[bool, bool, bool]:
        async with leases.hold([key]) as lease:
            inside = current_lease() is lease
            child_sees_it = await asyncio.create_task(_sees_a_lease())
        return inside, child_sees_it, current_lease() is None

    assert run(redis_url, body) == (True, True, True)


async def _sees_a_lease() -> bool:
    # Tasks copy their creator's context: records gathered inside a chunk's lease see it.
    return current_lease() is not None


def test_an_inner_lease_carries_the_outer_leases_fences_and_loses_with_it(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    branch, record = scope("branch:MAIN"), scope("rec")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> tuple[set[str], bool]:
        async with leases.hold([branch]) as outer, leases.hold([record], within=outer) as inner:
            keys = set(inner.fences)
            plain.delete(branch)
            with pytest.raises(LeaseLost):
                await inner.before_write()
            return keys, inner.lost

    keys, lost = run(redis_url, body)
    assert keys == {branch, record}
    assert lost


@contextlib.asynccontextmanager
async def _unreachable_manager() -> AsyncIterator[LeaseManager]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before we connect: nothing listens
    leases = LeaseManager.from_url(f"redis://127.0.0.1:{port}/0", FAST)
    try:
        yield leases
    finally:
        await leases.aclose()


def test_redis_down_stops_the_holder_with_an_error_naming_redis() -> None:
    async def main() -> None:
        async with _unreachable_manager() as leases, leases.hold([record_scope("x", "y")]):
            raise AssertionError("a lease was handed out without Redis")

    with pytest.raises(LeaseStoreUnavailable, match=r"Redis at 127\.0\.0\.1") as exc:
        asyncio.run(main())
    assert exc.value.reason == "redis_unavailable"


def test_a_lease_grows_only_towards_keys_later_in_the_global_order(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    record = scope("rec")
    holdings = holdings_scope(f"test-grow-{os.getpid()}", "42")
    branch = branch_scope(f"test-grow-{os.getpid()}", "MAIN")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> tuple[bool, set[str]]:
        async with leases.hold([record]) as lease:
            await lease.extend([holdings])
            held_in_redis = plain.exists(holdings) == 1
            with pytest.raises(ValueError, match="take it with hold"):
                await lease.extend([branch])
            return held_in_redis, set(lease.fences)

    held_in_redis, fenced = run(redis_url, body)
    assert held_in_redis
    assert fenced == {record, holdings}
    assert plain.exists(record, holdings, branch) == 0  # all released together


def test_leaving_a_hold_never_waits_on_a_renewal_stuck_in_redis(redis_url: str) -> None:
    """Renewing every millisecond, a cancel often lands inside a Redis call: exit must not hang."""

    async def main() -> int:
        settings = LeaseSettings(ttl=0.3, renew_every=0.001)
        async with LeaseManager.from_url(redis_url, settings) as manager:
            for i in range(200):

                async def one(i: int = i) -> None:
                    async with manager.hold([f"catalog_sync:test:hang:{i}"]):
                        await asyncio.sleep(0.01)

                await asyncio.wait_for(one(), 5)
        return 200

    assert asyncio.run(main()) == 200
