"""ILSClient for Koha's REST API (/api/v1): biblios as MARCXML, Basic or OAuth2 auth."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from types import TracebackType
from typing import Self

import httpx

from catalog_sync.ils.auth import (
    AuthScheme,
    BasicAuth,
    IssuedToken,
    NoAuth,
    OAuth2ClientCredentials,
    issued_token,
)
from catalog_sync.ils.errors import ILSAuthError, ILSNotFound, ILSRejected
from catalog_sync.ils.settings import ILSSettings
from catalog_sync.ils.transport import ILSTransport
from catalog_sync.leases import current_lease

API = "/api/v1"
MARCXML = "application/marcxml+xml"
TOKEN_PATH = f"{API}/oauth/token"
_PAGE_SIZE = 100
# Links are followed only this far: a lookup by control number never needs more.
_MAX_PAGES = 50


def control_number_of(marcxml: bytes) -> str | None:
    """The record's 001, trimmed; None when absent or the XML cannot be read."""
    try:
        root = ET.fromstring(marcxml)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "controlfield" and element.get("tag") == "001":
            return (element.text or "").strip() or None
    return None


class KohaAdapter:
    """Koha's biblios endpoints through an ILSTransport; see ILSClient for the contract."""

    flavour = "koha"

    def __init__(
        self,
        settings: ILSSettings,
        redis_url: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.transport = ILSTransport(settings, redis_url=redis_url, http=http)
        self.transport.auth = self._auth_scheme(settings)

    def _auth_scheme(self, settings: ILSSettings) -> AuthScheme:
        if settings.client_id and settings.client_secret:
            return OAuth2ClientCredentials(self._fetch_token, self.transport.label)
        if settings.username and settings.password is not None:
            return BasicAuth(settings.username, settings.password)
        return NoAuth()

    async def _fetch_token(self) -> IssuedToken:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id or "",
            "client_secret": self.settings.client_secret or "",
        }
        try:
            response = await self.transport.exchange(
                "POST",
                TOKEN_PATH,
                correlation_id="oauth-token",
                attempt=1,
                data=form,
                authenticate=False,
            )
        except ILSRejected as exc:
            # Koha answers 400 "Unimplemented grant type" when client credentials are off.
            raise ILSAuthError(
                f"{self.transport.label}: OAuth2 token request refused ({exc})", status=exc.status
            ) from exc
        return issued_token(response.json(), self.transport.label)

    # -- ILSClient -------------------------------------------------------------------------

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        async def send(attempt: int) -> str:
            response = await self.transport.exchange(
                "POST",
                f"{API}/biblios",
                correlation_id=correlation_id,
                attempt=attempt,
                content=marcxml,
                # Matching is ours (record keys); Koha's title/ISBN guess must not veto it.
                headers=await _write_headers(
                    {"Content-Type": MARCXML, "x-confirm-not-duplicate": "1"}
                ),
            )
            return str(response.json()["id"])

        async def recover() -> str | None:
            # Parsed only when needed: callers gather hundreds of creates at once, and parsing
            # them all up front would block the event loop before the first request goes out.
            control_number = control_number_of(marcxml)
            if control_number is None:
                return None
            found = await self.find_biblio_ids(control_number, correlation_id=correlation_id)
            return found[-1] if found else None

        return await self.transport.call(
            send, what="create biblio", idempotent=False, recover=recover
        )

    async def update_biblio(self, biblio_id: str, marcxml: bytes, *, correlation_id: str) -> None:
        async def send(attempt: int) -> None:
            await self.transport.exchange(
                "PUT",
                f"{API}/biblios/{_biblio_path(biblio_id)}",
                correlation_id=correlation_id,
                attempt=attempt,
                content=marcxml,
                headers=await _write_headers({"Content-Type": MARCXML}),
            )

        await self.transport.call(send, what=f"update biblio {biblio_id}", idempotent=True)

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        async def send(attempt: int) -> bytes | None:
            try:
                response = await self.transport.exchange(
                    "GET",
                    f"{API}/biblios/{_biblio_path(biblio_id)}",
                    correlation_id=correlation_id,
                    attempt=attempt,
                    headers={"Accept": MARCXML},
                )
            except ILSNotFound:
                return None
            return response.content

        return await self.transport.call(send, what=f"get biblio {biblio_id}", idempotent=True)

    async def delete_biblio(self, biblio_id: str, *, correlation_id: str) -> None:
        async def send(attempt: int) -> bool:
            await self.transport.exchange(
                "DELETE",
                f"{API}/biblios/{_biblio_path(biblio_id)}",
                correlation_id=correlation_id,
                attempt=attempt,
                headers=await _write_headers({}),
                expect=(204,),
            )
            return True

        async def recover() -> bool | None:
            # A dropped answer to a DELETE that went through: the biblio is already gone.
            gone = await self.get_biblio(biblio_id, correlation_id=correlation_id) is None
            return True if gone else None

        await self.transport.call(
            send, what=f"delete biblio {biblio_id}", idempotent=False, recover=recover
        )

    async def find_biblio_ids(self, control_number: str, *, correlation_id: str) -> list[str]:
        return await self.find_biblio_ids_by(
            {"control_number": control_number.strip()}, correlation_id=correlation_id
        )

    async def find_biblio_ids_by(
        self, query_fields: Mapping[str, str], *, correlation_id: str
    ) -> list[str]:
        query = json.dumps({k: v.strip() for k, v in query_fields.items()})
        ids: list[str] = []
        page = 1
        while page <= _MAX_PAGES:
            params: dict[str, str | int] = {"q": query, "_page": page, "_per_page": _PAGE_SIZE}

            async def send(attempt: int, params: dict[str, str | int] = params) -> httpx.Response:
                return await self.transport.exchange(
                    "GET",
                    f"{API}/biblios",
                    correlation_id=correlation_id,
                    attempt=attempt,
                    params=params,
                    headers={"Accept": "application/json"},
                )

            response = await self.transport.call(send, what="find biblios", idempotent=True)
            ids += [str(row["biblio_id"]) for row in response.json()]
            if "next" not in response.links:
                break
            page += 1
        return sorted(set(ids), key=int)

    async def check_access(self, *, correlation_id: str) -> str:
        async def send(attempt: int) -> httpx.Response:
            return await self.transport.exchange(
                "GET",
                f"{API}/biblios",
                correlation_id=correlation_id,
                attempt=attempt,
                params={"_per_page": 1},
                headers={"Accept": "application/json"},
            )

        response = await self.transport.call(send, what="check access", idempotent=True)
        total = response.headers.get("x-total-count", "?")
        return f"{self.transport.label}: Koha REST API answered; {total} biblios"

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _write_headers(headers: dict[str, str]) -> dict[str, str]:
    """A write's headers; under a record lease (catalog_sync.leases) it is checked in Redis
    first (LeaseLost if another holder took over) and carries the fencing tokens.

    The emulator refuses a token older than one it has seen (409, ILSFencedOff). A real Koha
    ignores the header: there the Redis check just before each attempt is the only guard,
    which narrows the window of a paused holder to one request's flight but cannot close it.
    """
    lease = current_lease()
    if lease is None:
        return headers
    return {**headers, **await lease.before_write()}


def _biblio_path(biblio_id: str) -> str:
    """Koha biblio ids are integers; anything else is refused before it reaches a URL."""
    if not str(biblio_id).isdigit():
        raise ILSRejected(f"not a Koha biblio id: {biblio_id!r}", reason="bad_biblio_id")
    return str(int(biblio_id))
