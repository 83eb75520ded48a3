"""Client-side count of ILS requests, by the kind of record work each one served.

The transport counts every request it sends (each attempt: retries, the re-send after a 401,
recovery look-ups) into the tally of the commit it runs under, under the kind of work the
commit declared for the code path. Both travel in context variables, as the correlation id
travels in the request, so no adapter method or protocol changes: each record is worked on in
its own asyncio task (pipeline.bounded.each_bounded), which gets its own copy of the kind and
shares the chunk's tally object. Example, as commit uses it::

    with counting() as tally:
        with request_kind(RequestKind.CREATE):
            await client.create_biblio(payload, correlation_id=cid)
    tally.as_report()  # {RequestKind.CREATE: {"POST": 1}}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from catalog_sync.models import RequestKind


class RequestTally:
    """Requests sent, by kind and HTTP method (one per attempt)."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[RequestKind, str]] = Counter()

    def add(self, kind: RequestKind, method: str) -> None:
        self.sent[(kind, method.upper())] += 1

    def as_report(self) -> dict[RequestKind, dict[str, int]]:
        report: dict[RequestKind, dict[str, int]] = {}
        for (kind, method), n in sorted(self.sent.items()):
            report.setdefault(kind, {})[method] = n
        return report


# Outside any commit (a connection test, the CLI) nothing is counted.
_TALLY: ContextVar[RequestTally | None] = ContextVar("ils_request_tally", default=None)
# A request sent where no commit step said otherwise serves the whole chunk.
_KIND: ContextVar[RequestKind] = ContextVar("ils_request_kind", default=RequestKind.SHARED)


@contextmanager
def counting() -> Iterator[RequestTally]:
    """Count the requests sent inside the block (and in the tasks it starts) in a new tally."""
    tally = RequestTally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


@contextmanager
def request_kind(kind: RequestKind) -> Iterator[None]:
    """Count the requests sent inside the block as `kind`; the kind before it comes back after."""
    token = _KIND.set(kind)
    try:
        yield
    finally:
        _KIND.reset(token)


def switch_request_kind(kind: RequestKind) -> None:
    """From here on, within the enclosing request_kind block, count requests as `kind`.

    For a record whose work changes kind half way (a matched create read and updated): the
    enclosing block's exit restores the kind from before it, whatever was switched inside.
    """
    _KIND.set(kind)


def count_request(method: str) -> None:
    """Called by the transport for every request it sends."""
    tally = _TALLY.get()
    if tally is not None:
        tally.add(_KIND.get(), method)
