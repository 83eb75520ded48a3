"""The careful HTTP path to an ILS: pacing, adaptive concurrency, retries, breaker and audit log.

Adapters (Koha, later FOLIO) describe requests; this module decides when and how often they go
out. Example, as an adapter uses it::

    async def send(attempt: int) -> str:
        response = await transport.exchange(
            "POST", "/api/v1/biblios", correlation_id=cid, attempt=attempt, content=marcxml
        )
        return str(response.json()["id"])

    biblio_id = await transport.call(send, what="create biblio", idempotent=False, recover=find)
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from catalog_sync.ils.auth import AuthScheme, NoAuth
from catalog_sync.ils.breaker import CircuitBreaker
from catalog_sync.ils.concurrency import AdaptiveConcurrency
from catalog_sync.ils.errors import (
    ILSAuthError,
    ILSConflict,
    ILSError,
    ILSFencedOff,
    ILSNotFound,
    ILSRejected,
    ILSUnavailable,
)
from catalog_sync.ils.ratelimit import RateGate, rate_gate
from catalog_sync.ils.requestcount import count_request, request_kind
from catalog_sync.ils.requestlog import RequestEvent, emit, redact_headers
from catalog_sync.ils.settings import ILSSettings
from catalog_sync.models import RequestKind

T = TypeVar("T")

# Transport failures that prove the request never reached the ILS: safe to resend any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_MAX_RETRY_AFTER = 60.0


class RetryableFailure(Exception):
    """A failure worth another attempt (429, 5xx, timeout, dropped connection)."""

    def __init__(
        self,
        what: str,
        *,
        status: int | None,
        retry_after: float | None,
        maybe_applied: bool,
        timed_out: bool = False,
    ) -> None:
        super().__init__(what)
        self.status = status
        self.retry_after = retry_after
        self.maybe_applied = maybe_applied
        self.timed_out = timed_out


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), _MAX_RETRY_AFTER)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return str(body.get("error_code")) if isinstance(body, dict) else None


def _koha_message(response: httpx.Response) -> str:
    """The ILS's own short error text (Koha: {"error": ...}); never the record payload."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:200]
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict):
            return f"{first.get('message', '')} {first.get('path', '')}".strip()[:200]
    if isinstance(body, list):
        return "accepted: " + ", ".join(str(x) for x in body)[:200]
    return response.reason_phrase


class ILSTransport:
    """One per client: owns the HTTP connection pool, the pacing and the failure handling."""

    def __init__(
        self,
        settings: ILSSettings,
        *,
        redis_url: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.label = settings.label
        self.auth: AuthScheme = NoAuth()
        limits = httpx.Limits(
            max_connections=settings.max_concurrency + 2,
            max_keepalive_connections=settings.max_concurrency + 2,
        )
        self._http = http or httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
            verify=settings.verify_tls,
            limits=limits,
        )
        self._gate: RateGate = rate_gate(
            settings.rate_limit, settings.burst, redis_url, settings.base_url, self.label
        )
        self.concurrency = AdaptiveConcurrency(settings.max_concurrency)
        self.breaker = CircuitBreaker(
            self.label, settings.breaker_threshold, settings.breaker_reset
        )
        self._backoff = wait_exponential_jitter(multiplier=0.1, max=10.0, jitter=0.1)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._gate.aclose()

    # -- one call, with retries ------------------------------------------------------------

    async def call(
        self,
        send: Callable[[int], Awaitable[T]],
        *,
        what: str,
        idempotent: bool,
        recover: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run `send(attempt)` until it succeeds, a non-retryable error, or the budget is spent.

        A non-idempotent request that may have been applied (dropped connection, timeout, 5xx
        after sending) is resent only after `recover()` found no trace of it; without `recover`
        it is not resent at all.
        """
        maybe_applied = False
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_attempts)
            | stop_after_delay(self.settings.retry_deadline),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableFailure),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    if maybe_applied and recover is not None:
                        found = await recover()
                        if found is not None:
                            return found
                    try:
                        return await send(attempts)
                    except RetryableFailure as exc:
                        if exc.maybe_applied and not idempotent:
                            if recover is None:
                                raise ILSUnavailable(
                                    f"{self.label}: {what} may or may not have been applied "
                                    f"({exc}); not resent",
                                    status=exc.status,
                                ) from exc
                            maybe_applied = True
                            if exc.timed_out:
                                # The ILS may still be working on it: give it as long again as
                                # we waited before looking for its result, or we might write
                                # the record a second time while the first write lands.
                                exc.retry_after = max(exc.retry_after or 0.0, self.settings.timeout)
                        raise
        except RetryableFailure as exc:
            if maybe_applied and recover is not None:
                # Out of attempts, but the last one may have landed: one last look.
                with contextlib.suppress(ILSError):
                    found = await recover()
                    if found is not None:
                        return found
            raise ILSUnavailable(
                f"{self.label}: {what} failed after {attempts} attempts; last: {exc}",
                status=exc.status,
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, RetryableFailure) and failure.retry_after is not None:
            return max(backoff, failure.retry_after)
        return backoff

    # -- one exchange (plus one token refresh on 401) ----------------------------------------

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        correlation_id: str,
        attempt: int,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        expect: Collection[int] = (200,),
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send once; return the response if its status is expected, else raise an ILSError
        subclass or RetryableFailure."""
        for refreshed in (False, True):
            # A token fetched here serves every request after it, not this record alone.
            with request_kind(RequestKind.SHARED):
                credential = await self.auth.header() if authenticate else None
            response = await self._send(
                method, path, correlation_id, attempt, content, data, params, headers, credential
            )
            if (
                response.status_code == 401
                and credential is not None
                and not refreshed
                and self.auth.refreshable(credential)
            ):
                continue
            return self._judge(method, path, response, expect)
        raise AssertionError("unreachable: the loop returns on its second pass")

    async def _send(
        self,
        method: str,
        path: str,
        correlation_id: str,
        attempt: int,
        content: bytes | None,
        data: Mapping[str, str] | None,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        credential: str | None,
    ) -> httpx.Response:
        request_headers = {"X-Request-ID": correlation_id, **(headers or {})}
        if credential:
            request_headers["Authorization"] = credential
        event = RequestEvent(self.settings.name, correlation_id, method, path, attempt)
        async with self.concurrency.slot():
            event.rate_wait_ms = round(await self._gate.acquire() * 1000, 2)
            # Checked after waiting for a slot: the breaker may have opened meanwhile.
            self.breaker.before_request()
            started = time.perf_counter()
            # Counted once sent, whatever comes back: a retry costs the rate limit as much.
            count_request(method)
            try:
                response = await self._http.request(
                    method,
                    path,
                    content=content,
                    data=data,
                    params=params,
                    headers=request_headers,
                )
            except BaseException as exc:
                if not isinstance(exc, httpx.TransportError):
                    # Cancelled or a bug: no verdict on the ILS, but free a half-open probe.
                    self.breaker.abandon()
                    raise
                latency = time.perf_counter() - started
                timed_out = isinstance(exc, httpx.TimeoutException)
                self.concurrency.observe(latency, overloaded=timed_out)
                self.breaker.record_failure(type(exc).__name__)
                event.latency_ms = round(latency * 1000, 2)
                event.outcome = "transport_error"
                event.error = type(exc).__name__
                emit(event)
                raise RetryableFailure(
                    f"{method} {path}: {type(exc).__name__}",
                    status=None,
                    retry_after=None,
                    maybe_applied=not isinstance(exc, _NOT_SENT),
                    timed_out=timed_out,
                ) from exc
        latency = time.perf_counter() - started
        status = response.status_code
        self.concurrency.observe(latency, overloaded=status in (429, 503))
        if status >= 500:
            self.breaker.record_failure(f"HTTP {status}")
        else:
            self.breaker.record_success()  # any other answer, 429 included, shows it is up
        event.status = status
        event.latency_ms = round(latency * 1000, 2)
        event.outcome = (
            "ok" if status < 400 else ("retry" if status == 429 or status >= 500 else "error")
        )
        event.response_headers = redact_headers(response.headers.multi_items())
        emit(event)
        return response

    def _judge(
        self, method: str, path: str, response: httpx.Response, expect: Collection[int]
    ) -> httpx.Response:
        status = response.status_code
        if status in expect:
            return response
        where = f"{method} {path}"
        if status == 429 or status >= 500:
            raise RetryableFailure(
                f"{where}: HTTP {status}",
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                # A 5xx may come after the ILS applied the write; a 429 never does.
                maybe_applied=status >= 500,
            )
        message = _koha_message(response)
        if status in (401, 403):
            raise ILSAuthError(
                f"{self.label} refused {where} with {status} ({message}): check the login, "
                f"password or client credentials of Airflow Connection {self.settings.name!r}",
                status=status,
            )
        if status == 404:
            raise ILSNotFound(f"{self.label}: {where}: not found ({message})", status=404)
        if status == 409 and _error_code(response) == ILSFencedOff.reason:
            raise ILSFencedOff(
                f"{self.label}: {where}: refused, a later lease holder has written this "
                f"record ({message})",
                status=409,
            )
        if status == 409:
            raise ILSConflict(f"{self.label}: {where}: conflict ({message})", status=409)
        raise ILSRejected(
            f"{self.label} rejected {where} with {status} ({message})",
            status=status,
            reason=f"ils_http_{status}",
        )


__all__ = ["ILSError", "ILSTransport", "RetryableFailure", "parse_retry_after"]
