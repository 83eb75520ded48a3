"""An Okapi session: login with expiry, refresh ahead of expiry and once on a 401, tenant always."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx

from catalog_sync.ils.errors import ILSAuthError, ILSError, ILSUnavailable
from catalog_sync.ils.ratelimit import RateGate, UnlimitedGate
from catalog_sync.ils.requestcount import count_request, request_kind
from catalog_sync.models import RequestKind

log = logging.getLogger(__name__)

ACCESS_COOKIE = "folioAccessToken"
REFRESH_COOKIE = "folioRefreshToken"
_MAX_RATE_LIMITED = 8  # 429s in a row for one request before giving up
_MAX_RETRY_AFTER = 60.0


class FolioUnknownTenant(ILSAuthError):
    """Okapi knows no such tenant: a configuration error, never retried."""

    reason = "folio_unknown_tenant"


class FolioTokenRefused(ILSAuthError):
    """The access token was refused again after its one refresh: the session is gone."""

    reason = "folio_token_refused"


@dataclass(frozen=True)
class FolioSettings:
    """Where and as whom to talk to FOLIO (from the Connection once wired)."""

    url: str
    tenant: str
    username: str
    password: str
    timeout: float = 30.0
    # Refresh when the access token has less than this left: a batch must not start on a token
    # about to lapse mid-request.
    refresh_margin: float = 30.0


@dataclass
class _Tokens:
    access: str
    refresh: str
    access_expires: datetime


class OkapiSession:
    """One logged-in session; calls are safe to run concurrently (a lock guards renewal)."""

    def __init__(
        self,
        settings: FolioSettings,
        client: httpx.AsyncClient | None = None,
        gate: RateGate | None = None,
    ) -> None:
        self.settings = settings
        # Every request sent (logins, refreshes, retries too) waits for its slot: FOLIO's rate
        # limit is per tenant, whatever the request.
        self._gate: RateGate = gate or UnlimitedGate()
        self._http = client or httpx.AsyncClient(
            base_url=settings.url.rstrip("/"), timeout=settings.timeout
        )
        self._tokens: _Tokens | None = None
        self._renewal = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.login()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._gate.aclose()

    def _tenant_headers(self) -> dict[str, str]:
        return {"X-Okapi-Tenant": self.settings.tenant}

    async def login(self) -> None:
        """POST /authn/login-with-expiry; the tokens come back only as cookies."""
        body = {"username": self.settings.username, "password": self.settings.password}
        for _ in range(_MAX_RATE_LIMITED):
            with request_kind(RequestKind.SHARED):  # a token serves every record
                count_request("POST")
            await self._gate.acquire()
            response = await self._http.post(
                "/authn/login-with-expiry", json=body, headers=self._tenant_headers()
            )
            # A login FOLIO's rate limit turned away is no credentials problem: an auth error
            # fails the task without retries, so the login waits for its turn instead.
            if response.status_code != 429:
                break
            await asyncio.sleep(_retry_after(response))
        self._check_tenant(response)
        if response.status_code != 201:
            raise ILSAuthError(
                f"FOLIO login for tenant {self.settings.tenant!r} failed: "
                f"{response.status_code} {folio_message(response)}",
                status=response.status_code,
            )
        self._tokens = _read_tokens(response)

    async def _refresh(self, stale: _Tokens | None) -> bool:
        """POST /authn/refresh once per stale token; False when FOLIO refuses it."""
        async with self._renewal:
            if self._tokens is not stale:  # another call renewed meanwhile
                return True
            if stale is None:
                await self.login()
                return True
            with request_kind(RequestKind.SHARED):
                count_request("POST")
            await self._gate.acquire()
            response = await self._http.post(
                "/authn/refresh",
                headers={**self._tenant_headers(), "Cookie": f"{REFRESH_COOKIE}={stale.refresh}"},
            )
            self._check_tenant(response)
            if response.status_code != 201:
                log.debug("FOLIO refused the refresh token: %s", response.status_code)
                return False
            self._tokens = _read_tokens(response)
            return True

    def _check_tenant(self, response: httpx.Response) -> None:
        if response.status_code == 404 and response.text.startswith("No such Tenant"):
            raise FolioUnknownTenant(
                f"FOLIO has no tenant {self.settings.tenant!r} (Okapi: {response.text.strip()}); "
                "check the Connection's tenant",
                status=404,
            )

    async def request(
        self,
        method: str,
        path: str,
        *,
        correlation_id: str,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with tenant and token; 429 waits Retry-After; 401 refreshes once, then fails."""
        tokens = self._tokens
        if tokens is None or tokens.access_expires - datetime.now(UTC) < timedelta(
            seconds=self.settings.refresh_margin
        ):
            await self._refresh(tokens)
        refreshed = False
        rate_limited = 0
        while True:
            tokens = self._tokens
            assert tokens is not None  # set by login/refresh above
            headers = {
                **self._tenant_headers(),
                "X-Okapi-Token": tokens.access,
                "X-Okapi-Request-Id": correlation_id,
            }
            # Counted once sent, as the Koha transport counts: a retry costs the rate limit too.
            count_request(method)
            await self._gate.acquire()
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                raise ILSUnavailable(f"FOLIO {method} {path}: {exc!r}") from exc
            self._check_tenant(response)
            if response.status_code == 401:
                if refreshed or not await self._refresh(tokens):
                    raise FolioTokenRefused(
                        f"FOLIO refused the access token for tenant {self.settings.tenant!r} "
                        f"after one refresh ({folio_message(response)}); not retried",
                        status=401,
                    )
                refreshed = True
                continue
            if response.status_code == 429 and rate_limited < _MAX_RATE_LIMITED:
                rate_limited += 1
                await asyncio.sleep(_retry_after(response))
                continue
            if response.status_code == 429:
                raise ILSUnavailable(f"FOLIO {method} {path}: still rate limited", status=429)
            return response


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(_MAX_RETRY_AFTER, max(0.0, float(response.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _read_tokens(response: httpx.Response) -> _Tokens:
    """Tokens from Set-Cookie (they are Secure cookies, so an http jar would drop them)."""
    cookies: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        cookies[name.strip()] = rest.split(";", 1)[0]
    try:
        expires = datetime.fromisoformat(response.json()["accessTokenExpiration"])
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        return _Tokens(cookies[ACCESS_COOKIE], cookies[REFRESH_COOKIE], expires)
    except (KeyError, ValueError) as exc:
        raise ILSError(f"FOLIO login answer without the expected tokens: {exc!r}") from exc


def folio_message(response: httpx.Response) -> str:
    """FOLIO's own words: the text/plain body or the first `errors` message (422)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            return str(response.json()["errors"][0]["message"])
        except (ValueError, KeyError, IndexError, TypeError):
            pass
    return response.text.strip()[:500]
