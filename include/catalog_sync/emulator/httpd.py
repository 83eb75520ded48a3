"""The web server in front of Koha: what it refuses before Koha sees a request.

Koha's packages serve the REST API through Apache (koha-common's Apache site proxying to Plack).
Apache answers 414 to a request line longer than LimitRequestLine, 8190 bytes by default, with
its own HTML page, not a Koha error body. The emulator refuses the same requests the same way,
so a client that builds long `q` searches finds out here and not in production.
"""

from __future__ import annotations

from collections import Counter

from catalog_sync.emulator.faultgate import ASGIApp, Receive, Scope, Send

# Apache httpd's default LimitRequestLine: the whole "GET /path?query HTTP/1.1" line.
LIMIT_REQUEST_LINE = 8190

_BODY = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    b"<title>414 Request-URI Too Long</title>\n</head><body>\n<h1>Request-URI Too Long</h1>\n"
    b"<p>The requested URL's length exceeds the capacity\nlimit for this server.<br />\n</p>\n"
    b"</body></html>\n"
)


def request_line_length(scope: Scope) -> int:
    """Bytes of the request line the client sent (method, target, protocol)."""
    target = bytes(scope.get("raw_path") or str(scope.get("path", "")).encode())
    query = bytes(scope.get("query_string") or b"")
    if query:
        target += b"?" + query
    method = str(scope.get("method", "GET"))
    version = str(scope.get("http_version", "1.1"))
    return len(method) + 1 + len(target) + len(" HTTP/") + len(version)


class RequestLineLimit:
    """Apache's 414 for a request line over `limit` bytes; everything else passes through."""

    def __init__(self, app: ASGIApp, counters: Counter[str], limit: int = LIMIT_REQUEST_LINE):
        self.app = app
        self.counters = counters
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or request_line_length(scope) <= self.limit:
            await self.app(scope, receive, send)
            return
        self.counters["uri_too_long"] += 1
        headers = [
            (b"content-type", b"text/html; charset=iso-8859-1"),
            (b"content-length", str(len(_BODY)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 414, "headers": headers})
        await send({"type": "http.response.body", "body": _BODY})
