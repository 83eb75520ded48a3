"""Request pacing to an ILS: a GCRA token bucket in Redis shared by every worker, or in-process."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from catalog_sync.ils.errors import ILSUnavailable

# GCRA with reservation: each caller books the next slot atomically and sleeps until it; the
# bucket is one key holding the "theoretical arrival time" in microseconds of Redis' own clock,
# so every process shares one clock and one queue. Returns the microseconds to wait and the
# booked slot (Redis time, microseconds).
_RESERVE_LUA = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
local new_tat = tat + interval
local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
return {string.format('%.0f', wait), string.format('%.0f', tat)}
"""


class RateGate(Protocol):
    """Admits one request; returns the seconds it waited."""

    async def acquire(self) -> float: ...

    async def aclose(self) -> None: ...


class UnlimitedGate:
    """No configured rate: never waits."""

    async def acquire(self) -> float:
        return 0.0

    async def aclose(self) -> None:
        return None


class LocalRateGate:
    """The same GCRA inside one process, for when no Redis is configured."""

    def __init__(self, rate: float, burst: float = 1.0) -> None:
        self._interval = 1.0 / rate
        self._tolerance = (max(burst, 1.0) - 1.0) * self._interval
        self._tat = 0.0

    async def acquire(self) -> float:
        now = time.monotonic()
        tat = max(self._tat, now)
        wait = max(0.0, tat - self._tolerance - now)
        self._tat = tat + self._interval
        if wait:
            await asyncio.sleep(wait)
        return wait

    async def aclose(self) -> None:
        return None


# Seconds to connect to, and to hear back from, the Redis of the shared gate. Without them a
# Redis that accepts connections but never answers blocks every ILS call forever; the lease
# client (catalog_sync.leases) uses the same 5 s.
REDIS_TIMEOUT = 5.0


class RedisRateGate:
    """R requests/s across all processes that use the same Redis and ILS base URL."""

    def __init__(
        self,
        redis_url: str,
        key: str,
        rate: float,
        burst: float = 1.0,
        label: str = "ILS",
        timeout: float = REDIS_TIMEOUT,
    ) -> None:
        # One quick retry covers a dropped pooled connection; redis-py's default (3 retries with
        # backoff up to 10 s) would stretch a hung Redis to half a minute per ILS call.
        self._redis: Redis = Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._timeout = timeout
        self._script = self._redis.register_script(_RESERVE_LUA)
        self._key = key
        self._interval_us = round(1_000_000 / rate)
        self._tolerance_us = round((max(burst, 1.0) - 1.0) * self._interval_us)
        self._label = label

    @staticmethod
    def key_for(base_url: str) -> str:
        digest = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()[:16]
        return f"catalog_sync:ils_rate:{digest}"

    async def reserve(self) -> tuple[float, int]:
        """Book the next slot: (seconds to wait for it, slot time in Redis microseconds)."""
        try:
            wait_us, slot_us = await self._script(
                keys=[self._key], args=[self._interval_us, self._tolerance_us]
            )
        except RedisTimeoutError as exc:
            raise ILSUnavailable(
                f"{self._label}: the shared rate limiter (Redis) did not answer within "
                f"{self._timeout:g} s: {exc}",
                reason="rate_limiter_unavailable",
            ) from exc
        except RedisError as exc:
            raise ILSUnavailable(
                f"{self._label}: the shared rate limiter (Redis) is unreachable: {exc}",
                reason="rate_limiter_unavailable",
            ) from exc
        return int(wait_us) / 1_000_000, int(slot_us)

    async def acquire(self) -> float:
        wait, _slot = await self.reserve()
        if wait:
            await asyncio.sleep(wait)
        return wait

    async def aclose(self) -> None:
        await self._redis.aclose()


def rate_gate(
    rate: float | None, burst: float, redis_url: str | None, base_url: str, label: str
) -> RateGate:
    """The gate for a connection: shared through Redis when a URL is given."""
    if not rate:
        return UnlimitedGate()
    if redis_url:
        return RedisRateGate(redis_url, RedisRateGate.key_for(base_url), rate, burst, label)
    return LocalRateGate(rate, burst)
