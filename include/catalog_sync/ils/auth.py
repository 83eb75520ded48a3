"""Credentials for ILS requests: Basic, or OAuth2 client-credentials tokens cached until expiry."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from catalog_sync.ils.errors import ILSAuthError

# Refresh this long before the ILS would expire the token, or a tenth of short lifetimes.
_REFRESH_MARGIN = 60.0


class AuthScheme(Protocol):
    async def header(self) -> str | None:
        """The Authorization value for the next request (fetching a token if needed)."""
        ...

    def refreshable(self, sent: str | None) -> bool:
        """After a 401 for `sent`: forget it and say whether a new credential may help."""
        ...


class NoAuth:
    async def header(self) -> str | None:
        return None

    def refreshable(self, sent: str | None) -> bool:
        return False


class BasicAuth:
    def __init__(self, username: str, password: str) -> None:
        raw = f"{username}:{password}".encode()
        self._value = "Basic " + base64.b64encode(raw).decode("ascii")

    async def header(self) -> str | None:
        return self._value

    def refreshable(self, sent: str | None) -> bool:
        return False  # the same password would fail again


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    refresh_at: float


TokenFetcher = Callable[[], Awaitable[IssuedToken]]


class OAuth2ClientCredentials:
    """One cached bearer token per client; concurrent callers share a single refresh."""

    def __init__(self, fetch: TokenFetcher, label: str) -> None:
        self._fetch = fetch
        self._label = label
        self._token: IssuedToken | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def header(self) -> str | None:
        token = self._token
        if token is None or self._stale(token):
            async with self._lock:
                token = self._token
                if token is None or self._stale(token):
                    token = await self._fetch()
                    self.fetches += 1
                    self._token = token
        return f"Bearer {token.access_token}"

    @staticmethod
    def _stale(token: IssuedToken) -> bool:
        return time.monotonic() >= token.refresh_at

    def refreshable(self, sent: str | None) -> bool:
        current = self._token
        if current is not None and sent == f"Bearer {current.access_token}":
            self._token = None
        return True


def issued_token(body: object, label: str) -> IssuedToken:
    """Read a token response ({access_token, token_type, expires_in})."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise ILSAuthError(f"{label}: token endpoint answered without an access_token")
    raw_lifetime = body.get("expires_in")
    lifetime = 3600.0 if raw_lifetime is None else float(raw_lifetime)
    margin = min(_REFRESH_MARGIN, lifetime / 10)
    return IssuedToken(body["access_token"], time.monotonic() + lifetime - margin)
