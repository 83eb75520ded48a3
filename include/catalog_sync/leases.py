"""Leases on ILS records in Redis: one writer per record, renewed while held, fenced on write.

A lease is redis-py's `Lock` (SET NX PX with a random token; Lua compare-and-delete to
release, compare-and-PEXPIRE to renew) plus a fencing token: a per-key counter, taken by a
Lua script only while the taker still owns the key, so every later holder of that key gets a
larger number. A background task renews the lease while its holder works; if renewal finds the
key gone or taken over, the lease is marked lost and the holder's next write check raises
`LeaseLost` - a holder never writes on a lease it knows it lost.

A paused holder (GC, SIGSTOP, a delayed packet) can still be past its check when it resumes.
Only the storage can close that window: writes made inside `LeaseManager.hold` carry the
fencing tokens in the `X-Catalog-Sync-Fence` header, and the ILS emulator keeps the highest
token seen per lease key and answers 409 to an older one. A real Koha ignores that header:
against a real ILS the last defence is `Lease.before_write`, a Redis compare just before each
write, which narrows the window to one request's flight but cannot close it.

Several keys are taken in one global order (branch, then records, then holdings; sorted within
each) with one bounded wait, so two holders never deadlock; on timeout what was taken is
released. Usage::

    async with LeaseManager.from_url(redis_url) as leases:
        async with leases.hold([record_scope("ils_default", key)]) as lease:
            ...  # read, diff; the ILS adapter calls lease.before_write() before each write
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

log = logging.getLogger(__name__)

LEASE_PREFIX = "catalog_sync:lease"
FENCE_HEADER = "X-Catalog-Sync-Fence"

# KEYS[1] lease key, KEYS[2] its fence counter; ARGV[1] token, ARGV[2] counter TTL in ms.
# The counter is bumped only by the key's owner, so fence order follows ownership order. A
# missing counter (first use, expired, Redis restarted empty) starts from Redis's clock in
# microseconds: still larger than any token handed out before, so counters may expire.
_FENCE_SCRIPT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
    return 0
end
if redis.call('exists', KEYS[2]) == 0 then
    local now = redis.call('time')
    redis.call('set', KEYS[2], now[1] .. string.format('%06d', tonumber(now[2])))
end
local fence = redis.call('incr', KEYS[2])
redis.call('pexpire', KEYS[2], ARGV[2])
return fence
"""

# KEYS: lease keys; ARGV: their tokens, same order. Returns how many still hold our token.
_OWNED_SCRIPT = """
local owned = 0
for i, key in ipairs(KEYS) do
    if redis.call('get', key) == ARGV[i] then
        owned = owned + 1
    end
end
return owned
"""


def _part(value: str) -> str:
    # Record keys carry spaces and '|' (e.g. "DLC|   00000002 "); keep keys printable.
    return quote(value, safe="|-_.")


def record_scope(ils: str, record_key: str) -> str:
    """Lease key of one ILS record, by the record key our feeds match it on."""
    return f"{LEASE_PREFIX}:{_part(ils)}:{_part(record_key)}"


def holdings_scope(ils: str, parent_id: str) -> str:
    """Lease key of the holdings and items hanging off one ILS biblio (their parent)."""
    return f"{LEASE_PREFIX}:{_part(ils)}:holdings:{_part(parent_id)}"


def branch_scope(ils: str, branch: str) -> str:
    """Lease key of a whole branch (library), for feeds that must not overlap there at all."""
    return f"{LEASE_PREFIX}:{_part(ils)}:branch:{_part(branch)}"


def _acquisition_order(key: str) -> tuple[int, str]:
    # One global order for every holder - branches, then records, then holdings - so a lease
    # that grows (a matched record's holdings) never waits on a key taken before its own.
    if ":branch:" in key:
        return (0, key)
    return (2, key) if ":holdings:" in key else (1, key)


class LeaseError(RuntimeError):
    """A lease could not be taken or kept; `reason` is a stable code."""

    reason = "lease_error"


class LeaseTimeout(LeaseError):
    """Another holder kept a key longer than our bounded wait; nothing of ours is held."""

    reason = "lease_timeout"


class LeaseLost(LeaseError):
    """The lease expired or was taken over while held: the holder must not write."""

    reason = "lease_lost"


class UnleasedRecords(LeaseError):
    """Records of a chunk left unwritten (lease lost or busy); the chunk's retry writes them."""

    reason = "records_unleased"


class LeaseStoreUnavailable(LeaseError):
    """Redis did not answer: without leases nothing is written; retry later."""

    reason = "redis_unavailable"


@dataclass(frozen=True)
class LeaseSettings:
    """Timings of leases; `renew_every` defaults to a third of the TTL."""

    ttl: float = 30.0
    wait: float = 60.0
    renew_every: float | None = None
    poll: float = 0.05
    # Records of one process holding leases at once: more would hold keys while they queue
    # for an ILS connection, making other runs wait for nothing.
    max_held: int = 16
    fence_ttl: float = 30 * 86400.0

    @property
    def renew_interval(self) -> float:
        return self.renew_every if self.renew_every is not None else self.ttl / 3


_current: ContextVar[Lease | None] = ContextVar("catalog_sync_lease", default=None)


def current_lease() -> Lease | None:
    """The innermost lease held by the running task, if any (ILS adapters fence writes by it)."""
    return _current.get()


@dataclass
class _Held:
    key: str
    lock: Lock
    token: str
    fence: int


@dataclass
class Lease:
    """Keys held together, with their fencing tokens; `parent` is a lease held around this one."""

    manager: LeaseManager
    parent: Lease | None = None
    held: list[_Held] = field(default_factory=list)
    lost_reason: str | None = None
    # Set on a part of a group lease (Lease.narrowed): the lease that renews and releases it.
    whole: Lease | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(h.key for h in self.held)

    @property
    def fences(self) -> dict[str, int]:
        """Fencing token per key, this lease's and its parents'."""
        outer = self.parent.fences if self.parent else {}
        return {**outer, **{h.key: h.fence for h in self.held}}

    @property
    def lost(self) -> bool:
        outer = [o for o in (self.parent, self.whole) if o is not None]
        return self.lost_reason is not None or any(o.lost for o in outer)

    def fence_header(self) -> dict[str, str]:
        value = ", ".join(f"{key}={fence}" for key, fence in sorted(self.fences.items()))
        return {FENCE_HEADER: value}

    def ensure_held(self) -> None:
        """Raise LeaseLost if renewal already found the lease gone (no Redis call)."""
        if self.parent is not None:
            self.parent.ensure_held()
        if self.whole is not None:
            self.whole.ensure_held()
        if self.lost_reason is not None:
            raise LeaseLost(self.lost_reason)

    async def before_write(self) -> dict[str, str]:
        """Check in Redis that every key is still ours; return the fence header to send."""
        self.ensure_held()
        held = self._all_held()
        try:
            owned = await self.manager.owned_script(
                keys=[h.key for h in held], args=[h.token for h in held]
            )
        except RedisError as exc:
            raise self.manager.unavailable(exc) from exc
        if int(owned) != len(held):
            self.lose("the lease expired or another holder took it over before the write")
            self.ensure_held()
        return self.fence_header()

    async def extend(self, keys: Iterable[str]) -> None:
        """Take more keys into this lease (e.g. the holdings of a record just matched).

        They must come after every key already held in the acquisition order (a record's
        holdings after the record); they are renewed and released with the rest.
        """
        new = sorted(set(keys) - set(self.keys), key=_acquisition_order)
        if self.whole is not None and new:
            # Its group would neither renew nor release them.
            raise ValueError(f"a part of a group lease cannot take {new[0]}: hold it alone")
        if self.held and new and _acquisition_order(new[0]) < _acquisition_order(self.keys[-1]):
            raise ValueError(f"{new[0]} sorts before {self.keys[-1]}: take it with hold()")
        self.ensure_held()
        await self.manager.take(self, new)

    @contextlib.contextmanager
    def narrowed(self, keys: Iterable[str]) -> Iterator[Lease]:
        """Some keys of this (group) lease as `current_lease()` for one record's work: its writes
        are checked in Redis and fenced by those keys (and the parents') alone, so a write's
        fence header stays one record's size; renewal and release stay this lease's."""
        wanted = set(keys)
        part = Lease(
            self.manager,
            parent=self.parent,
            held=[h for h in self.held if h.key in wanted],
            whole=self,
        )
        reset = _current.set(part)
        try:
            yield part
        finally:
            _current.reset(reset)

    def lose(self, reason: str) -> None:
        if self.lost_reason is None:
            self.lost_reason = f"{reason} (keys: {', '.join(self.keys)})"
            log.error("lease lost: %s", self.lost_reason)

    def _all_held(self) -> list[_Held]:
        return (self.parent._all_held() if self.parent else []) + self.held


class LeaseManager:
    """Takes, renews and releases leases on one Redis; one per event loop (async client)."""

    def __init__(self, client: aioredis.Redis, settings: LeaseSettings | None = None) -> None:
        self.redis = client
        self.settings = settings or LeaseSettings()
        kwargs = client.connection_pool.connection_kwargs
        self.label = f"Redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        self.fence_script = client.register_script(_FENCE_SCRIPT)
        self.owned_script = client.register_script(_OWNED_SCRIPT)
        self._slots = asyncio.Semaphore(self.settings.max_held)
        self._capacity = self.settings.max_held

    def allow_held(self, n: int) -> None:
        """From now on let up to `n` leases be held at once (never fewer than before): an ILS
        that batches writes needs a batch's worth of records under lease (records_at_once)."""
        for _ in range(n - self._capacity):
            self._slots.release()  # a plain Semaphore grows by one with each release
        self._capacity = max(self._capacity, n)

    @classmethod
    def from_url(cls, url: str, settings: LeaseSettings | None = None) -> LeaseManager:
        client = aioredis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        return cls(client, settings)

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def unavailable(self, exc: BaseException) -> LeaseStoreUnavailable:
        return LeaseStoreUnavailable(
            f"{self.label} is unavailable for record leases ({type(exc).__name__}: {exc}); "
            "nothing is written without a lease - the commit stops and is retried later"
        )

    @asynccontextmanager
    async def hold(
        self, keys: Iterable[str], *, within: Lease | None = None, counted: bool = True
    ) -> AsyncIterator[Lease]:
        """Hold every key (global order, one bounded wait) and renew them until the block ends.

        Raises LeaseTimeout when a key stays taken past `settings.wait`, LeaseStoreUnavailable
        when Redis does not answer. Inside the block the lease is `current_lease()`. An outer
        lease that others are taken `within` passes `counted=False`: it must not use up one of
        the `max_held` slots its inner leases wait for.
        """
        wanted = sorted(set(keys), key=_acquisition_order)
        lease = Lease(self, parent=within)
        async with self._slots if counted else contextlib.nullcontext():
            await self.take(lease, wanted)
            done = asyncio.Event()
            renewer = asyncio.create_task(self._renew(lease, done), name="lease-renewal")
            reset = _current.set(lease)
            try:
                yield lease
            finally:
                _current.reset(reset)
                # A cancel that lands inside a Redis call can be swallowed by the client, so the
                # renewer also stops on `done`; never wait on it longer than one TTL.
                done.set()
                renewer.cancel()
                await asyncio.wait({renewer}, timeout=self.settings.ttl)
                await self._release(lease)

    async def take(self, lease: Lease, keys: list[str]) -> None:
        """Acquire `keys` in order into `lease`; on failure what this call took is released."""
        s = self.settings
        before = len(lease.held)
        deadline = time.monotonic() + s.wait
        try:
            for key in keys:
                lock = Lock(
                    self.redis,
                    key,
                    timeout=s.ttl,
                    sleep=s.poll,
                    blocking_timeout=max(0.0, deadline - time.monotonic()),
                    thread_local=False,
                )
                token = secrets.token_hex(16)
                if not await lock.acquire(token=token):
                    raise LeaseTimeout(
                        f"{key} stayed leased by another holder for {s.wait:g} s; "
                        "released the keys taken so far"
                    )
                fence = int(
                    await self.fence_script(
                        keys=[key, f"{key}:fence"], args=[token, int(s.fence_ttl * 1000)]
                    )
                )
                lease.held.append(_Held(key, lock, token, fence))
                if fence == 0:
                    # Expired between SET and fence: we were paused for a whole TTL.
                    raise LeaseLost(f"{key} expired before its fencing token was taken")
        except BaseException as exc:
            taken, lease.held[before:] = lease.held[before:], []
            await self._release(Lease(self, held=taken))
            if isinstance(exc, LockError | RedisError) and not isinstance(exc, LeaseError):
                raise self.unavailable(exc) from exc
            raise

    async def _renew(self, lease: Lease, done: asyncio.Event) -> None:
        s = self.settings
        renewed_at = time.monotonic()
        while not lease.lost and not done.is_set():
            await asyncio.sleep(s.renew_interval)
            if done.is_set():
                return
            try:
                for held in lease.held:
                    await held.lock.reacquire()
                renewed_at = time.monotonic()
            except LockNotOwnedError:
                lease.lose("renewal found the lease expired or taken over")
            except RedisError as exc:
                # A blip is retried while the TTL lasts; after that the keys may be another's.
                if time.monotonic() - renewed_at >= s.ttl:
                    lease.lose(f"renewal failed for a whole TTL: {type(exc).__name__}: {exc}")

    async def _release(self, lease: Lease) -> None:
        for held in reversed(lease.held):
            try:
                await held.lock.release()
            except LockNotOwnedError:
                # The holder's writes were each checked and fenced; only the release was late.
                log.warning("lease %s had expired by the time it was released", held.key)
            except RedisError as exc:
                # It expires by itself within the TTL; the holder's work is already done.
                log.warning("could not release lease %s: %s", held.key, exc)
        lease.held.clear()
