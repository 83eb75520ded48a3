"""Delivery errors with stable reason codes; messages name host and user, never a secret."""

from __future__ import annotations


class DeliveryError(Exception):
    """A vendor delivery could not be fetched."""

    reason = "delivery_failed"
    retryable = False


class DeliveryAuthError(DeliveryError):
    """The server refused the credentials: retrying cannot help, so the task ends at once."""

    reason = "auth_failed"


class DeliveryHostKeyError(DeliveryError):
    """The SFTP server's host key is missing from, or differs from, the known_hosts supplied."""

    reason = "host_key_rejected"


class DeliveryNotFoundError(DeliveryError):
    """The remote folder or URL does not exist."""

    reason = "not_found"


class DeliveryTransientError(DeliveryError):
    """A dropped connection, a timeout or a server error: worth another attempt."""

    reason = "transient"
    retryable = True


class DeliveryUnavailableError(DeliveryError):
    """Transient failures persisted through every attempt; nothing was landed for the file."""

    reason = "unavailable"


class DeliveryIntegrityError(DeliveryTransientError):
    """A download ended with fewer or more bytes than announced (a broken transfer)."""

    reason = "size_mismatch"


class DeliveryUnpackError(DeliveryError):
    """A .gz or .zip delivery is corrupt or holds an unsafe member name."""

    reason = "unpack_failed"


class DeliveryRefusedError(DeliveryError):
    """One remote file is refused (it breaks a safety rule); the others are still fetched."""

    reason = "refused"


class DeliveryUnsafeNameError(DeliveryRefusedError):
    """A name the vendor chose (a listed file, a zip member) is not a plain, safe base name."""

    reason = "unsafe_name"


class DeliveryOffOriginError(DeliveryRefusedError):
    """A listing entry or a redirect points at an origin the vendor config does not allow."""

    reason = "off_origin"


class DeliveryUnpackLimitError(DeliveryRefusedError):
    """A packed delivery expands past the vendor's byte or member bound (an archive bomb)."""

    reason = "unpack_limit"
