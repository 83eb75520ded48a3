"""ILS call failures with stable reason codes; the message always names the ILS."""

from __future__ import annotations


class ILSError(Exception):
    """An ILS call failed; `status` is the HTTP status when there was one."""

    reason = "ils_error"

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        if reason is not None:
            self.reason = reason


class ILSAuthError(ILSError):
    """401/403, or a token request refused: wrong credentials or permissions; never retried."""

    reason = "ils_auth"


class ILSNotFound(ILSError):
    reason = "ils_not_found"


class ILSConflict(ILSError):
    """409, e.g. a biblio that still has items attached."""

    reason = "ils_conflict"


class ILSVersionConflict(ILSConflict):
    """An ILS with optimistic locking (FOLIO's `_version`, 409) refused a write because the
    record changed there since it was read: drift found at write time, under the vendor's
    drift policy like a fingerprint mismatch found before it."""

    reason = "drift"


class ILSFencedOff(ILSError):
    """409 to a write whose lease fencing token is older than one the ILS has seen: a later
    lease holder wrote the record meanwhile. Not retried; the record waits for the retry."""

    reason = "stale_fence"


class ILSRejected(ILSError):
    """Any other 4xx: the ILS refused this request as sent; retrying will not help."""

    reason = "ils_rejected"


class ILSUnavailable(ILSError):
    """Retries exhausted or the circuit is open: the ILS is down or overloaded; retry later."""

    reason = "ils_unavailable"


class ILSBadAnswer(ILSError):
    """An answer that is not Koha's (a proxy's HTML page, an empty 200, an unreadable record):
    the record it was for fails with this reason; nothing was written on its strength."""

    reason = "ils_bad_answer"


class ILSAmbiguousCreate(ILSError):
    """More than one ILS record carries the stamp of one create: a person must choose."""

    reason = "ambiguous_create"
