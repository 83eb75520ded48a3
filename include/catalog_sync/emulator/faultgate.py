"""ASGI layer in front of the Koha API: what a proxy or a struggling ILS does before Koha."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from catalog_sync.emulator.faults import Fault, FaultInjector, TokenBucket, retry_after_header

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


class GateState(Protocol):
    """What the gate reads of an emulator's state (the Koha and the FOLIO one both have it)."""

    counters: Counter[str]
    faults: FaultInjector
    bucket: TokenBucket | None


# Bodies as the parts in front of Koha send them: Koha's own 500 and maintenance 503, a proxy's 502.
_FAULT_BODIES: dict[int, tuple[str, bytes]] = {
    500: (
        "application/json",
        b'{"error":"Something went wrong, check Koha logs for details.",'
        b'"error_code":"internal_server_error"}',
    ),
    502: ("text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    503: ("application/json", b'{"error":"System is under maintenance."}'),
    504: ("text/html", b"<html><body><h1>504 Gateway Time-out</h1></body></html>"),
}
FaultBodies = dict[int, tuple[str, bytes]]


class FaultGate:
    """Rate limit, downtime and injected faults for /api/ paths; /_emulator/ is never disturbed."""

    def __init__(
        self,
        app: ASGIApp,
        state: GateState,
        gated: str = "/api/",
        bodies: FaultBodies | None = None,
    ) -> None:
        self.app = app
        self.state = state
        # What a fault answers with: Koha's bodies by default; the FOLIO mode passes RMB's.
        self.bodies = _FAULT_BODIES if bodies is None else bodies
        # FOLIO's routes have no common prefix: its emulator gates "/" (all but /_emulator/).
        self.gated = gated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or not path.startswith(self.gated)
            or path.startswith("/_emulator/")
        ):
            await self.app(scope, receive, send)
            return
        counters = self.state.counters
        counters["requests"] += 1
        request_id = _header(scope, b"x-request-id")
        respond = _with_request_id(send, request_id, counters)
        decision = self.state.faults.decide(str(scope.get("method", "GET")))

        if Fault.DOWN in decision.faults:
            counters["down_rejections"] += 1
            if self.state.faults.profile.down_mode == "drop":
                await _drop(send)
            else:
                await _plain(respond, 503, self.bodies)
            return
        if self.state.bucket is not None:
            wait = self.state.bucket.take()
            if wait > 0:
                counters["rate_limited"] += 1
                body = b'{"error":"Too many requests."}'
                extra = [(b"retry-after", retry_after_header(wait).encode())]
                await _respond(respond, 429, "application/json", body, extra)
                return
        if Fault.SLOW in decision.faults:
            counters["slowed"] += 1
            # Like a busy ILS: the request is taken in, worked on slowly and applied even if
            # the client has stopped waiting (its answer then goes nowhere).
            receive = _replay(await _read_body(receive))
            await asyncio.sleep(decision.delay)
        if Fault.ERROR in decision.faults and decision.status is not None:
            counters["injected_errors"] += 1
            await _plain(respond, decision.status, self.bodies)
            return
        if Fault.DROP_BEFORE in decision.faults:
            counters["dropped_before_apply"] += 1
            await _drop(send)
            return
        if Fault.BAD_ANSWER in decision.faults:
            counters["bad_answers"] += 1
            await self._bad_answer(scope, receive, respond)
            return
        if Fault.DROP_AFTER in decision.faults:
            counters["dropped_after_apply"] += 1

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop(send)
            return
        await self.app(scope, receive, respond)

    async def _bad_answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What a misbehaving proxy or a mangled answer looks like to the client."""
        kind = self.state.faults.profile.bad_answer
        if kind == "html":
            await _respond(send, 200, "text/html", _PROXY_PAGE, [])
            return
        start: Message = {}
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, capture)
        whole = b"".join(body)
        sent = b"" if kind == "empty" else whole[: len(whole) // 2]
        kept = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers = [*kept, (b"content-length", str(len(sent)).encode())]
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": sent})


_PROXY_PAGE = b"<html><body><h1>Welcome</h1><p>Please log in to continue.</p></body></html>"


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A receive() that hands over an already-read body, then reports the client gone."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _with_request_id(send: Send, request_id: str | None, counters: Any) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            counters[f"status_{message['status']}"] += 1
            if request_id:
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def _plain(send: Send, status: int, bodies: FaultBodies) -> None:
    content_type, body = bodies.get(status, ("application/json", b'{"error":"Error"}'))
    await _respond(send, status, content_type, body, [])


async def _respond(
    send: Send, status: int, content_type: str, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Abort the TCP connection without an answer, as a crashing proxy would."""
    # ASGI has no "drop"; uvicorn's send is a bound method of the request cycle holding the
    # transport, so we abort that and mark the cycle disconnected (no 500 written afterwards).
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        log.error("cannot drop a connection outside uvicorn; answering 500 instead")
        await _respond(send, 500, "application/json", json.dumps({"error": "drop"}).encode(), [])
        return
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]
