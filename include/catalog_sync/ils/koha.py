"""ILSClient for Koha's REST API (/api/v1): biblios as MARCXML, Basic or OAuth2 auth.

Only what Koha offers: searches go through `q` on the biblio/biblioitems columns (isbn, issn,
lc_control_number, title, timestamp ...), never MARC 001/003/035, which Koha keeps only in
the record. A create whose answer was lost is found again by its stamp (catalog_sync.changes.stamp).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

import httpx

from catalog_sync.changes.stamp import (
    STAMP_SOURCE,
    marcxml_control,
    marcxml_stamp,
    marcxml_subfields,
)
from catalog_sync.ils.auth import (
    AuthScheme,
    BasicAuth,
    IssuedToken,
    NoAuth,
    OAuth2ClientCredentials,
    issued_token,
)
from catalog_sync.ils.client import Candidate
from catalog_sync.ils.errors import (
    ILSAmbiguousCreate,
    ILSAuthError,
    ILSBadAnswer,
    ILSNotFound,
    ILSRejected,
)
from catalog_sync.ils.koha_items import KohaItems, biblio_path, read_json, write_headers
from catalog_sync.ils.koha_query import (
    MAX_SEARCH_TARGET,
    TIMESTAMP_SLACK,
    Numbers,
    collection_records,
    halves,
    ids_query,
    koha_time,
    numbers_query,
    row_numbers,
    search_target,
    split_to_fit,
    title_pattern,
)
from catalog_sync.ils.settings import ILSSettings
from catalog_sync.ils.transport import ILSTransport, RetryableFailure

API = "/api/v1"
MARCXML = "application/marcxml+xml"
TOKEN_PATH = f"{API}/oauth/token"
_PAGE_SIZE = 100
# Links are followed only this far: a lookup by standard numbers never needs more.
_MAX_PAGES = 50
# Biblios read in one list request: its `q` stays far below URL limits (~10 bytes an id).
READ_BATCH = 50


class KohaAdapter(KohaItems):
    """Koha's biblios (and, from KohaItems, items) endpoints through an ILSTransport; see
    ILSClient and ItemsClient for the contract."""

    flavour = "koha"

    def __init__(
        self,
        settings: ILSSettings,
        redis_url: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.transport = ILSTransport(settings, redis_url=redis_url, http=http)
        # A Koha under a path (https://host/koha/api/v1) spends part of the URL limit on it.
        self._path_prefix = httpx.URL(settings.base_url).path.rstrip("/")
        self.max_search_target = MAX_SEARCH_TARGET
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
        body = read_json(response, self.transport.label, "POST /oauth/token")
        return issued_token(body, self.transport.label)

    # -- ILSClient -------------------------------------------------------------------------

    async def create_biblio(self, marcxml: bytes, *, correlation_id: str) -> str:
        started = datetime.now(UTC)

        async def send(attempt: int) -> str:
            response = await self.transport.exchange(
                "POST",
                f"{API}/biblios",
                correlation_id=correlation_id,
                attempt=attempt,
                content=marcxml,
                # Matching is ours (record keys, match points); Koha's duplicate guess, run
                # through its search index, must not veto it.
                headers=await write_headers(
                    {"Content-Type": MARCXML, "x-confirm-not-duplicate": "1"}
                ),
            )
            try:
                body = read_json(response, self.transport.label, "POST /biblios")
            except ILSBadAnswer as exc:
                body = exc
            if not isinstance(body, dict) or not str(body.get("id", "")).isdigit():
                # Something in front of Koha answered, or Koha's answer was mangled: the
                # record may well have been saved, so it is found by its stamp, not resent.
                raise RetryableFailure(
                    f"POST {API}/biblios: 200 without a biblio id ({body})",
                    status=response.status_code,
                    retry_after=None,
                    maybe_applied=True,
                )
            return str(body["id"])

        async def recover() -> str | None:
            # Parsed only when needed: callers gather hundreds of creates at once.
            stamp = marcxml_stamp(marcxml)
            if stamp is None:
                return None
            titles = marcxml_subfields(marcxml, "245", "a")
            found = await self.find_created(
                [stamp],
                title=titles[0] if titles else None,
                source=marcxml_control(marcxml, "003"),
                since=started,
                correlation_id=correlation_id,
            )
            if len(found) > 1:
                raise ILSAmbiguousCreate(
                    f"{self.transport.label}: {len(found)} biblios carry the stamp of one create"
                )
            return next(iter(found), None)

        # Unstamped, a lost answer cannot be told from a lost request: never resent then.
        # (A byte search, not a parse: callers gather hundreds of creates at once.)
        stamped = STAMP_SOURCE.encode() in marcxml
        return await self.transport.call(
            send, what="create biblio", idempotent=False, recover=recover if stamped else None
        )

    async def update_biblio(self, biblio_id: str, marcxml: bytes, *, correlation_id: str) -> None:
        async def send(attempt: int) -> None:
            await self.transport.exchange(
                "PUT",
                f"{API}/biblios/{biblio_path(biblio_id)}",
                correlation_id=correlation_id,
                attempt=attempt,
                content=marcxml,
                headers=await write_headers({"Content-Type": MARCXML}),
            )

        await self.transport.call(send, what=f"update biblio {biblio_id}", idempotent=True)

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        async def send(attempt: int) -> bytes | None:
            try:
                response = await self.transport.exchange(
                    "GET",
                    f"{API}/biblios/{biblio_path(biblio_id)}",
                    correlation_id=correlation_id,
                    attempt=attempt,
                    headers={"Accept": MARCXML},
                )
            except ILSNotFound:
                return None
            kind = response.headers.get("content-type", "")
            if not response.content.strip() or MARCXML not in kind:
                raise ILSBadAnswer(
                    f"{self.transport.label}: GET {API}/biblios/{biblio_id} answered "
                    f"{response.status_code} with {len(response.content)} bytes of "
                    f"{kind or 'no content type'}, not MARCXML"
                )
            return response.content

        return await self.transport.call(send, what=f"get biblio {biblio_id}", idempotent=True)

    async def get_biblios(
        self, biblio_ids: Collection[str], *, correlation_id: str
    ) -> dict[str, bytes]:
        # GET /biblios with a biblio_id `q` and Accept MARCXML: Koha answers the page's records
        # as one <collection> (Biblios.pm list, print_collection), each with its id in 999 $c.
        wanted = sorted({biblio_path(i) for i in biblio_ids}, key=int)
        batches = [wanted[i : i + READ_BATCH] for i in range(0, len(wanted), READ_BATCH)]
        found: dict[str, bytes] = {}
        for part in await asyncio.gather(
            *(self._read_batch(b, correlation_id=correlation_id) for b in batches)
        ):
            found.update(part)
        return found

    async def _read_batch(self, batch: list[str], *, correlation_id: str) -> dict[str, bytes]:
        # One page as large as the batch: every requested id fits on it.
        params: dict[str, str | int] = {"q": ids_query(batch), "_per_page": len(batch)}

        async def send(attempt: int) -> httpx.Response:
            return await self.transport.exchange(
                "GET",
                f"{API}/biblios",
                correlation_id=correlation_id,
                attempt=attempt,
                params=params,
                headers={"Accept": MARCXML},
                # Not retried: Koha prints a list by parsing every record's metadata, and one
                # record it cannot parse makes the whole list a 500, every time.
                expect=(200, 500),
            )

        response = await self.transport.call(send, what="read biblios", idempotent=True)
        if response.status_code == 500:
            if len(batch) == 1:
                return {}  # read alone by get_biblio, which retries and says what it is
            # Halved until the record Koha cannot print is alone: the rest still come batched.
            half = len(batch) // 2
            found: dict[str, bytes] = {}
            for part in (batch[:half], batch[half:]):
                found.update(await self._read_batch(part, correlation_id=correlation_id))
            return found
        kind = response.headers.get("content-type", "")
        try:
            if MARCXML not in kind:
                raise ValueError(f"{kind or 'no content type'}, not MARCXML")
            records = collection_records(response.content)
        except ValueError as exc:
            raise ILSBadAnswer(
                f"{self.transport.label}: GET {API}/biblios (MARCXML list of {len(batch)}) "
                f"answered {response.status_code} with {len(response.content)} bytes: {exc}"
            ) from exc
        # Only what was asked for: anything else in the answer is not ours to trust.
        return {i: records[i] for i in batch if i in records}

    async def delete_biblio(self, biblio_id: str, *, correlation_id: str) -> None:
        async def send(attempt: int) -> bool:
            await self.transport.exchange(
                "DELETE",
                f"{API}/biblios/{biblio_path(biblio_id)}",
                correlation_id=correlation_id,
                attempt=attempt,
                headers=await write_headers({}),
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

    async def _search(self, query: object, *, correlation_id: str) -> list[dict[str, object]]:
        """Every biblio (JSON view) matching a Koha `q`, following the pagination links."""
        rows: list[dict[str, object]] = []
        page = 1
        while page <= _MAX_PAGES:
            params: dict[str, str | int] = {
                "q": json.dumps(query),
                "_page": page,
                "_per_page": _PAGE_SIZE,
            }

            async def send(attempt: int, params: dict[str, str | int] = params) -> httpx.Response:
                return await self.transport.exchange(
                    "GET",
                    f"{API}/biblios",
                    correlation_id=correlation_id,
                    attempt=attempt,
                    params=params,
                    headers={"Accept": "application/json"},
                )

            response = await self.transport.call(send, what="search biblios", idempotent=True)
            body = read_json(response, self.transport.label, "GET /biblios")
            if not isinstance(body, list) or not all(
                isinstance(r, dict) and str(r.get("biblio_id", "")).isdigit() for r in body
            ):
                raise ILSBadAnswer(
                    f"{self.transport.label}: GET {API}/biblios did not answer a list of biblios"
                )
            rows += body
            if "next" not in response.links:
                break
            page += 1
        return rows

    async def find_by_numbers(
        self, numbers: Mapping[str, Sequence[str]], *, correlation_id: str
    ) -> list[Candidate]:
        def fits(part: Numbers) -> bool:
            target = search_target(
                f"{self._path_prefix}{API}/biblios", numbers_query(part), _MAX_PAGES, _PAGE_SIZE
            )
            return len(target.encode()) <= self.max_search_target

        rows: list[dict[str, object]] = []
        for part in split_to_fit(numbers, fits):
            rows += await self._search_numbers(part, correlation_id=correlation_id)
        found: dict[str, Candidate] = {}
        for row in rows:
            held = row_numbers(row)
            # A -like hit inside a longer number, or another ISBN form, is no match.
            matched = {i: held.get(i, frozenset()) & set(v) for i, v in numbers.items()}
            if any(matched.values()):
                biblio_id = str(row["biblio_id"])
                found[biblio_id] = Candidate(biblio_id, matched)
        return sorted(found.values(), key=lambda c: int(c.biblio_id))

    async def _search_numbers(
        self, numbers: Numbers, *, correlation_id: str
    ) -> list[dict[str, object]]:
        """One search for `numbers`; halved when a proxy stricter than Apache's default
        refuses the URL (414), as FOLIO batches are halved on 413."""
        query = numbers_query(numbers)
        if not query:
            return []
        try:
            return await self._search(query, correlation_id=correlation_id)
        except ILSRejected as exc:
            if exc.status != 414 or sum(map(len, numbers.values())) <= 1:
                raise
        first, second = halves(numbers)
        return await self._search_numbers(
            first, correlation_id=correlation_id
        ) + await self._search_numbers(second, correlation_id=correlation_id)

    async def find_created(
        self,
        stamps: Collection[str],
        *,
        title: str | None,
        source: str | None,
        since: datetime,
        correlation_id: str,
    ) -> dict[str, str]:
        wanted = set(stamps)
        if not wanted:
            return {}
        query: dict[str, object] = {"timestamp": {">=": koha_time(since - TIMESTAMP_SLACK)}}
        pattern = title_pattern(title)
        if pattern is not None:
            query["title"] = {"-like": pattern}
        found: dict[str, str] = {}
        for row in await self._search(query, correlation_id=correlation_id):
            biblio_id = str(row["biblio_id"])
            copy = await self.get_biblio(biblio_id, correlation_id=correlation_id)
            stamp = marcxml_stamp(copy) if copy is not None else None
            # The stamp decides; a copy from another agency (003) is never ours.
            if copy is not None and stamp in wanted and marcxml_control(copy, "003") == source:
                found[biblio_id] = str(stamp)
        return found

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
