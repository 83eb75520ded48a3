"""PII masking: the policy, the masker for records and raw bytes, and telemetry scrubbing."""

from __future__ import annotations

from catalog_sync.privacy.errors import MaskingKeyError, PolicyInvalidError, PrivacyError
from catalog_sync.privacy.mask import Masker
from catalog_sync.privacy.policy import (
    DEFAULT_POLICY_PATH,
    FieldRule,
    MaskAction,
    PiiPolicy,
    ScrubberRule,
    load_policy,
)
from catalog_sync.privacy.scrub import Scrubber

__all__ = [
    "DEFAULT_POLICY_PATH",
    "FieldRule",
    "MaskAction",
    "Masker",
    "MaskingKeyError",
    "PiiPolicy",
    "PolicyInvalidError",
    "PrivacyError",
    "Scrubber",
    "ScrubberRule",
    "load_policy",
]
