"""One JSON log event per outbound ILS request; credentials redacted, bodies never logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

LOGGER_NAME = "catalog_sync.ils.requests"
REDACTED = "[redacted]"
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "www-authenticate"}
)
_SECRET_PARTS = ("token", "secret", "session", "api-key", "apikey", "password", "auth")

log = logging.getLogger(LOGGER_NAME)


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers safe to log: anything that can carry a credential is replaced by a marker."""
    safe: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        secret = key in _SECRET_HEADERS or any(part in key for part in _SECRET_PARTS)
        safe[key] = REDACTED if secret else value
    return safe


@dataclass
class RequestEvent:
    """What one request did; serialised as the log message itself."""

    ils: str
    correlation_id: str
    method: str
    path: str
    attempt: int
    status: int | None = None
    latency_ms: float = 0.0
    outcome: str = "ok"
    error: str | None = None
    rate_wait_ms: float = 0.0
    response_headers: dict[str, str] = field(default_factory=dict)
    event: str = "ils_request"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def emit(event: RequestEvent) -> None:
    level = logging.INFO if event.outcome == "ok" else logging.WARNING
    if log.isEnabledFor(level):
        payload = event.as_dict()
        log.log(level, json.dumps(payload, sort_keys=True), extra={"ils_request": payload})
