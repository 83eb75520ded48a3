"""FOLIO's error answers: text/plain for 400/401/403/404/409/413/500, `errors` JSON for 422."""

from __future__ import annotations

import re
from typing import Any

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)


class FolioError(Exception):
    """An answer with FOLIO's status, body and content type."""

    def __init__(self, status: int, body: str | dict[str, Any]) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def plain(status: int, message: str) -> FolioError:
    """RMB and Okapi send every error but 422 as text/plain (raml-util rtypes)."""
    return FolioError(status, message)


def unprocessable(errors: list[dict[str, Any]]) -> FolioError:
    """RMB's validation answer: raml-util schemas/errors.schema."""
    return FolioError(422, {"errors": errors, "total_records": len(errors)})


def field_error(message: str, key: str, value: object, code: str = "-1") -> dict[str, Any]:
    """One RMB error entry naming the offending property, as its javax validation reports it."""
    return {
        "message": message,
        "type": "1",
        "code": code,
        "parameters": [{"key": key, "value": "null" if value is None else str(value)}],
    }


def not_found() -> FolioError:
    return plain(404, "Not found")


def version_conflict(record_id: str, stored: int, sent: object) -> FolioError:
    """The text of RMB's optimistic-locking trigger (ERRCODE 23F09), answered as 409."""
    return plain(
        409,
        f"Cannot update record {record_id} because it has been changed (optimistic locking): "
        f"Stored _version is {stored}, _version of request is {sent}",
    )
