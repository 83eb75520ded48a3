"""Delivery configuration and results: what to fetch, and what a fetch found."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog_sync.delivery.safety import UnpackLimits, origin_label, origin_of


class DeliverySource(BaseModel):
    """Where a vendor's files come from (SFTP or HTTPS) and the hygiene rules to apply.

    Credentials are not here: they come from the Airflow Connection `conn_id` and are
    passed to `fetch_sftp` / `fetch_https` as arguments by the task.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["sftp", "https"]
    conn_id: str = Field(description="Airflow Connection with host, login, password or key")
    remote_dir: str = Field(default=".", description="SFTP folder to list")
    url: str | None = Field(default=None, description="HTTPS listing (ends with /) or file URL")
    patterns: list[str] = Field(default_factory=lambda: ["*.mrc", "*.xml", "*.gz", "*.zip"])
    lookback_days: float | None = Field(default=7, gt=0, description="Ignore older files")
    stable_seconds: float = Field(default=30, ge=0, description="Wait between two size looks")
    max_looks: int = Field(default=3, ge=2, description="Looks before a growing file is left")
    done_marker_suffix: str | None = Field(
        default=None, description="e.g. '.done': X is complete once X.done exists"
    )
    attempts: int = Field(default=3, ge=1, description="Tries per file on transient errors")
    retry_wait_seconds: float = Field(default=5, ge=0)
    timeout_seconds: float = Field(default=60, gt=0)
    archive_retention_days: int = Field(default=90, ge=1)
    # Credentials go to the listing's own origin only; entries elsewhere are refused unless
    # their origin (scheme://host[:port]) is listed here, and then fetched without credentials.
    allowed_origins: list[str] = Field(
        default_factory=list, description="Other origins a listing may point at, e.g. a CDN"
    )
    # Bounds on one packed (.gz/.zip) delivery, all members together: past them it is refused.
    max_unpacked_bytes: int = Field(default=UnpackLimits.max_bytes, gt=0)
    max_unpacked_members: int = Field(default=UnpackLimits.max_members, gt=0)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for url in value:
            if urlsplit(url).path not in ("", "/"):
                raise ValueError(f"allowed origin {url!r} must be scheme://host[:port], no path")
            out.append(origin_label(origin_of(url)))  # raises ValueError for a non-http(s) URL
        return out

    @property
    def unpack_limits(self) -> UnpackLimits:
        return UnpackLimits(self.max_unpacked_bytes, self.max_unpacked_members)


@dataclass(frozen=True)
class FetchedFile:
    """One landed file (a delivery, or a member unpacked from a .gz/.zip delivery)."""

    name: str
    path: Path
    sha256: str
    size: int
    delivered_as: str  # the remote file name (the archive's, for an unpacked member)
    delivery_sha256: str  # sha256 of the file as delivered (equals sha256 when not packed)
    archived_to: Path


@dataclass
class DeliveryReport:
    """What one fetch did: landed files, and every remote file it left, with why."""

    fetched: list[FetchedFile] = field(default_factory=list)
    already_loaded: list[str] = field(default_factory=list)
    too_old: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # still growing, or no done-marker yet
    empty: list[str] = field(default_factory=list)  # zero-byte deliveries: flagged, not landed
    attempts: dict[str, int] = field(default_factory=dict)  # downloads needing > 1 try
    # Remote files not landed, with why: an unsafe name, another origin, past unpack bounds.
    refused: dict[str, str] = field(default_factory=dict)
    # The same files' stable reason codes (DeliveryRefusedError.reason): a message may quote
    # what the vendor sent (a host, a member name), a code never does.
    refused_codes: dict[str, str] = field(default_factory=dict)
