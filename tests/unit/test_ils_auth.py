"""OAuth2 client-credentials tokens: one fetch for many callers, refreshed before expiry."""

from __future__ import annotations

import asyncio

import pytest

from catalog_sync.ils.auth import IssuedToken, OAuth2ClientCredentials, issued_token
from catalog_sync.ils.errors import ILSAuthError


class TokenDesk:
    """Hands out numbered tokens with a fixed lifetime, as a token endpoint would."""

    def __init__(self, expires_in: int) -> None:
        self.expires_in = expires_in
        self.issued = 0

    async def fetch(self) -> IssuedToken:
        self.issued += 1
        await asyncio.sleep(0.001)  # callers pile up behind one refresh
        body = {"access_token": f"t{self.issued}", "token_type": "Bearer", "expires_in": 3600}
        body["expires_in"] = self.expires_in
        return issued_token(body, "ILS 'x'")


def test_concurrent_callers_share_one_token_fetch() -> None:
    desk = TokenDesk(expires_in=3600)
    auth = OAuth2ClientCredentials(desk.fetch, "ILS 'x'")

    async def run() -> set[str | None]:
        return set(await asyncio.gather(*(auth.header() for _ in range(20))))

    assert asyncio.run(run()) == {"Bearer t1"}
    assert desk.issued == 1


def test_a_token_at_the_end_of_its_life_is_replaced_before_use() -> None:
    desk = TokenDesk(expires_in=0)
    auth = OAuth2ClientCredentials(desk.fetch, "ILS 'x'")

    async def run() -> list[str | None]:
        return [await auth.header(), await auth.header()]

    assert asyncio.run(run()) == ["Bearer t1", "Bearer t2"]


def test_a_401_drops_the_token_it_was_sent_with_but_not_a_newer_one() -> None:
    desk = TokenDesk(expires_in=3600)
    auth = OAuth2ClientCredentials(desk.fetch, "ILS 'x'")

    async def run() -> list[str | None]:
        first = await auth.header()
        assert auth.refreshable(first)
        second = await auth.header()
        assert auth.refreshable("Bearer stale-from-another-request")
        return [first, second, await auth.header()]

    assert asyncio.run(run()) == ["Bearer t1", "Bearer t2", "Bearer t2"]


def test_a_token_answer_without_access_token_is_an_auth_error() -> None:
    with pytest.raises(ILSAuthError, match="ILS 'x'"):
        issued_token({"error": "unauthorized_client"}, "ILS 'x'")
