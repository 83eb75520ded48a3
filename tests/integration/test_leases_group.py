"""A group lease (many records' keys held in one hold) narrowed to one record for its writes:
the write is checked and fenced by that record's keys alone, the group still renews and
releases them, and a part cannot grow behind the group's back. Real Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from tests.integration.test_leases import FAST, run, scope  # noqa: F401

from catalog_sync.leases import (
    FENCE_HEADER,
    LeaseLost,
    LeaseManager,
    current_lease,
    holdings_scope,
)

# ruff: noqa: F811

pytestmark = pytest.mark.timeout(30)


def test_a_write_under_a_narrowed_group_lease_is_fenced_by_its_own_keys_only(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    keys = [scope(f"DLC|{n:08d}") for n in range(40)]
    mine = [keys[7], holdings_scope("test-narrowed", "107")]

    async def body(leases: LeaseManager) -> tuple[str, str, bool]:
        async with leases.hold([*keys, mine[1]]) as group:
            with group.narrowed(mine) as part:
                assert current_lease() is part
                header = (await part.before_write())[FENCE_HEADER]
            whole = group.fence_header()[FENCE_HEADER]
            return header, whole, current_lease() is group

    header, whole, restored = run(redis_url, body)
    assert sorted(p.rpartition("=")[0] for p in header.split(", ")) == sorted(mine)
    assert len(whole.split(", ")) == 41 and restored


def test_a_part_sees_its_group_lost_and_a_lost_key_fails_its_write(
    redis_url: str, scope: Callable[[str], str]
) -> None:
    first, second = scope("DLC|00000001"), scope("DLC|00000002")
    plain = redis.Redis.from_url(redis_url)

    async def body(leases: LeaseManager) -> list[str]:
        seen = []
        async with leases.hold([first, second]) as group:
            with group.narrowed([first]) as part:
                plain.delete(first)  # expired, or taken over by another holder
                try:
                    await part.before_write()
                except LeaseLost:
                    seen.append("first lost")
            with group.narrowed([second]) as other:
                await other.before_write()  # still ours: written
                seen.append("second written")
                group.lose("renewal found the lease expired or taken over")
                try:
                    other.ensure_held()
                except LeaseLost:
                    seen.append("second lost with its group")
                with pytest.raises(ValueError, match="cannot take"):
                    await other.extend([holdings_scope("test-narrowed", "9")])
        return seen

    assert run(redis_url, body) == ["first lost", "second written", "second lost with its group"]
