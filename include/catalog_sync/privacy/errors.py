"""Privacy errors, each with a stable reason code."""

from __future__ import annotations


class PrivacyError(Exception):
    """Base of the privacy errors; `reason` is stable and safe to log."""

    reason = "privacy_error"


class PolicyInvalidError(PrivacyError):
    reason = "pii_policy_invalid"


class MaskingKeyError(PrivacyError):
    """The masking key is missing or empty: refuse rather than hash with a guessable key."""

    reason = "pii_key_missing"
