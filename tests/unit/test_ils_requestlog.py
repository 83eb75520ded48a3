"""Request log events: credentials redacted, Retry-After read in both HTTP forms."""

from __future__ import annotations

import email.utils
import json
import logging
import time

import pytest

from catalog_sync.ils.requestlog import LOGGER_NAME, REDACTED, RequestEvent, emit, redact_headers
from catalog_sync.ils.transport import parse_retry_after


def test_headers_that_can_carry_credentials_are_redacted() -> None:
    safe = redact_headers(
        [
            ("Authorization", "Bearer abc"),
            ("Set-Cookie", "CGISESSID=123"),
            ("X-Okapi-Token", "jwt"),
            ("x-koha-request-id", "7"),
            ("X-RateLimit-Remaining", "3"),
            ("Content-Type", "application/json"),
        ]
    )

    assert safe["authorization"] == safe["set-cookie"] == safe["x-okapi-token"] == REDACTED
    assert safe["x-koha-request-id"] == "7"
    assert safe["x-ratelimit-remaining"] == "3"
    assert safe["content-type"] == "application/json"


def test_an_event_is_one_json_document_and_failures_log_as_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = RequestEvent("ils_default", "demo:ab12:0:17", "POST", "/api/v1/biblios", attempt=2)
    event.status, event.outcome = 503, "retry"

    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        emit(event)

    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert json.loads(record.getMessage())["correlation_id"] == "demo:ab12:0:17"


@pytest.mark.parametrize(("value", "expected"), [("3", 3.0), (None, None), ("soon", None)])
def test_retry_after_delta_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_and_its_cap() -> None:
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    in_a_day = email.utils.formatdate(time.time() + 86400, usegmt=True)

    assert 0 < (parse_retry_after(in_ten) or 0) <= 10
    assert parse_retry_after(in_a_day) == 60.0
