"""Run-level errors an operator reads in the Airflow UI: each says what is wrong and what to do."""

from __future__ import annotations


class RunInputError(Exception):
    """The delivery cannot be processed as it stands; retrying will not help."""

    reason = "run_input_error"


class InboxMissingError(RunInputError):
    reason = "inbox_missing"


class DeliveryFormatError(RunInputError):
    reason = "delivery_format"
