"""Input errors about a whole vendor file, each with a stable reason code."""

from __future__ import annotations


class CatalogSyncInputError(Exception):
    """A vendor file that cannot be ingested as a whole; `reason` is a stable code for reports."""

    reason: str = "input_error"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class EmptyFileError(CatalogSyncInputError):
    """The delivered file has no bytes at all."""

    reason = "empty_file"


class NotMarcError(CatalogSyncInputError):
    """The delivered file is readable but holds neither ISO 2709, MARCXML nor BIBFRAME."""

    reason = "not_marc"


class RecordRejected(Exception):
    """One record cannot be accepted; raised inside preparation, turned into a Rejection there."""

    def __init__(self, reason: str, detail: str, control_number: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.control_number = control_number
