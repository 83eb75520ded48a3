"""Fetch vendor deliveries over HTTPS (httpx): a JSON or HTML listing, or a single file URL."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from catalog_sync.delivery.errors import (
    DeliveryAuthError,
    DeliveryError,
    DeliveryNotFoundError,
    DeliveryOffOriginError,
    DeliveryTransientError,
)
from catalog_sync.delivery.fetch import AlreadyLoaded, FetchPolicy, RemoteEntry, fetch_from
from catalog_sync.delivery.models import DeliveryReport
from catalog_sync.delivery.safety import UnpackLimits, origin_label, origin_of

_CHUNK = 1 << 16
_HREF = re.compile(r"""href\s*=\s*["']([^"'#?]+)["']""", re.IGNORECASE)
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def _mtime(value: Any) -> float | None:
    """Epoch seconds from a number, an ISO 8601 string or an HTTP date; None if unreadable."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


class HttpsFolder:
    """A vendor's HTTPS listing (URL ending in `/`) or one file URL, as a remote folder."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        allowed_origins: Sequence[str] = (),
    ) -> None:
        self.url = url
        self.username = username
        self.host = urlsplit(url).netloc
        self.label = f"{urlsplit(url).scheme}://{username + '@' if username else ''}{self.host}"
        self.origin = origin_of(url)
        # Entries and redirects may go to these; credentials only ever to self.origin.
        self._allowed = {self.origin} | {origin_of(o) for o in allowed_origins}
        self._credentials: dict[str, str] = {}
        if username:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._credentials["Authorization"] = f"Basic {basic}"
        elif token:
            self._credentials["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            headers={"Accept-Encoding": "identity"},  # byte counts must match Content-Length
            timeout=timeout,
            verify=verify,
            follow_redirects=True,
            transport=transport,
            event_hooks={"request": [self._guard]},
        )

    def _refusal(self, url: str) -> str | None:
        """Why `url` may not be fetched (another origin, not allowed), or None."""
        try:
            where = origin_of(url)
        except ValueError:
            return f"not an http(s) URL: {url[:80]!r}"
        if where in self._allowed:
            return None
        return (
            f"points at {origin_label(where)}, not the listing's origin "
            f"{origin_label(self.origin)}; add it to allowed_origins of the vendor's delivery "
            "config to fetch it (without credentials)"
        )

    def _guard(self, request: httpx.Request) -> None:
        """Every request, redirects included: allowed origins only, credentials to our own."""
        url = str(request.url)
        refusal = self._refusal(url)
        if refusal:
            raise DeliveryOffOriginError(f"{self.label}: {request.url.path} {refusal}")
        if origin_of(url) != self.origin:
            request.headers.pop("Authorization", None)

    def __enter__(self) -> HttpsFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def reconnect(self) -> None:
        """httpx reopens a dropped connection by itself on the next request."""

    def _check(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        response.close()
        if status in (401, 403):
            user = f"user {self.username!r}" if self.username else "anonymous access"
            raise DeliveryAuthError(
                f"{self.label}: {self.host} refused {user} (HTTP {status}) for {what}; check "
                "the login and password or token of the Airflow Connection (not retried)"
            )
        if status in (404, 410):
            raise DeliveryNotFoundError(f"{self.label}: {what} not found (HTTP {status})")
        if status in _TRANSIENT_STATUS:
            raise DeliveryTransientError(f"{self.label}: HTTP {status} for {what}")
        raise DeliveryError(f"{self.label}: HTTP {status} for {what}")

    def _send(self, method: str, url: str, stream: bool = False) -> httpx.Response:
        try:
            own = self._refusal(url) is None and origin_of(url) == self.origin
            request = self._client.build_request(
                method, url, headers=self._credentials if own else None
            )
            response = self._client.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise DeliveryTransientError(f"{self.label}: {method} {url} failed ({exc})") from exc
        self._check(response, urlsplit(url).path or url)
        return response

    def entries(self) -> list[RemoteEntry]:
        if not self.url.endswith("/"):
            return [self._single()]
        response = self._send("GET", self.url)
        if "json" in response.headers.get("content-type", ""):
            return self._from_json(response.json())
        names = []
        for href in _HREF.findall(response.text):
            if href.endswith("/") or href.startswith(("..", "mailto:")):
                continue
            url = urljoin(self.url, href)
            name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            names.append(RemoteEntry(name, None, None, url, self._refusal(url)))
        return names

    def _from_json(self, body: Any) -> list[RemoteEntry]:
        items = body.get("files", []) if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise DeliveryError(f"{self.label}: listing is not a list of files")
        out = []
        for item in items:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            name = str(item["name"])
            size = item.get("size")
            location = urljoin(self.url, str(item.get("url") or item.get("href") or name))
            out.append(
                RemoteEntry(
                    name=name,
                    size=int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
                    mtime=_mtime(item.get("mtime") or item.get("modified")),
                    location=location,
                    refused=self._refusal(location),
                )
            )
        return out

    def _single(self) -> RemoteEntry:
        response = self._send("HEAD", self.url)
        length = response.headers.get("content-length")
        return RemoteEntry(
            name=unquote(urlsplit(self.url).path.rsplit("/", 1)[-1]) or "delivery",
            size=int(length) if length and length.isdigit() else None,
            mtime=_mtime(response.headers.get("last-modified")),
            location=self.url,
        )

    def open(self, entry: RemoteEntry) -> tuple[Iterator[bytes], int | None]:
        refusal = entry.refused or self._refusal(entry.location)
        if refusal:
            raise DeliveryOffOriginError(f"{self.label}: {entry.name} {refusal}")
        response = self._send("GET", entry.location, stream=True)
        length = response.headers.get("content-length")
        return self._chunks(response, entry.name), int(
            length
        ) if length and length.isdigit() else None

    def _chunks(self, response: httpx.Response, name: str) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(_CHUNK)
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise DeliveryTransientError(f"{self.label}: transfer of {name} broke ({exc})") from exc
        finally:
            response.close()


def fetch_https(
    url: str,
    *,
    landing_dir: Path,
    archive_dir: Path,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    verify: bool | str = True,
    patterns: Sequence[str] = ("*",),
    already_loaded: AlreadyLoaded = lambda name, sha256: False,
    lookback_seconds: float | None = None,
    stable_seconds: float = 0.0,
    max_looks: int = 2,
    done_marker_suffix: str | None = None,
    attempts: int = 3,
    retry_wait_seconds: float = 5.0,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    now: float | None = None,
    transport: httpx.BaseTransport | None = None,
    allowed_origins: Sequence[str] = (),
    max_unpacked_bytes: int = UnpackLimits.max_bytes,
    max_unpacked_members: int = UnpackLimits.max_members,
) -> DeliveryReport:
    """Fetch new deliveries from an HTTPS listing or file URL, with the SFTP hygiene rules.

    A listing URL ends with `/` and answers JSON (`[{"name", "size", "modified"}]` or
    `{"files": [...]}`) or an HTML index (names only: no lookback, sizes taken from each
    download's Content-Length). Downloads land under a temporary name and are renamed once
    their length matches Content-Length; a dropped connection is retried from the start.
    401/403 raise DeliveryAuthError at once. Credentials go to the listing's origin only;
    an entry or redirect elsewhere is refused unless its origin is in `allowed_origins`, and
    then fetched without them.
    """
    policy = FetchPolicy(
        patterns=tuple(patterns),
        lookback_seconds=lookback_seconds,
        stable_seconds=stable_seconds,
        max_looks=max_looks,
        done_marker_suffix=done_marker_suffix,
        attempts=attempts,
        retry_wait_seconds=retry_wait_seconds,
        unpack_limits=UnpackLimits(max_unpacked_bytes, max_unpacked_members),
    )
    folder = HttpsFolder(
        url,
        username=username,
        password=password,
        token=token,
        verify=verify,
        timeout=timeout,
        transport=transport,
        allowed_origins=allowed_origins,
    )
    with folder:
        return fetch_from(
            folder,
            policy,
            landing_dir=landing_dir,
            archive_dir=archive_dir,
            already_loaded=already_loaded,
            sleep=sleep,
            now=now,
        )


__all__ = ["HttpsFolder", "fetch_https"]
