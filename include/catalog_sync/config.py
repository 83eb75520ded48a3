"""Vendor configuration (include/config/vendors.yaml) as typed, validated models."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog_sync.delivery.models import DeliverySource
from catalog_sync.paths import vendors_file
from catalog_sync.retention import RetentionPeriods

# 001+003 and 035 are accepted for configs written before, but Koha cannot search them
# (catalog_sync.changes.matching skips them; docs/koha.md): our record-key map covers 001+003.
MatchPoint = Literal["001+003", "035", "020", "022", "010"]
DEFAULT_MATCH_POINTS: tuple[MatchPoint, ...] = ("020", "022", "010")


class SourceConfig(BaseModel):
    """Where deliveries come from: a local inbox folder, or SFTP / HTTPS (`delivery`)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "sftp", "https"] = "local"
    inbox: str = Field(
        default="", description="Local folder (relative to CATALOG_SYNC_HOME unless absolute)"
    )
    patterns: list[str] = Field(default_factory=lambda: ["*.mrc", "*.xml"])
    delivery: DeliverySource | None = None

    @model_validator(mode="after")
    def _source_complete(self) -> SourceConfig:
        if self.kind == "local" and not self.inbox:
            raise ValueError("a local source needs `inbox`")
        if self.kind != "local" and (self.delivery is None or self.delivery.kind != self.kind):
            raise ValueError(f"a {self.kind} source needs `delivery` with kind {self.kind}")
        return self


class RetryPolicy(BaseModel):
    """How Airflow retries a vendor's tasks (its DAG's default_args)."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(default=2, ge=0)
    delay_seconds: float = Field(default=60, gt=0, description="Wait before the first retry")
    # Airflow's multiplier: with 2.0 the waits are 1, 2, 4 ... times delay_seconds.
    backoff: float = Field(default=2.0, ge=0)
    max_delay_seconds: float = Field(default=900, gt=0)


class VendorConfig(BaseModel):
    """One vendor feed: where its files come from and how its records are treated."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    owner: str = "catalog-ops"
    ils_conn_id: str = "ils_default"
    schedule: str | None = None
    timezone: str = "UTC"
    source: SourceConfig
    records_per_chunk: int = Field(default=2000, ge=1)
    required_fields: list[str] = Field(default_factory=lambda: ["001", "245"])
    record_key: list[str] = Field(default_factory=lambda: ["003", "001"])
    declared_format: Literal["iso2709", "marcxml", "bibframe"] | None = None
    retention: RetentionPeriods = Field(default_factory=RetentionPeriods)
    # Repair invalid UTF-8 (replacement characters) instead of rejecting the record.
    allow_utf8_repair: bool = False
    # lenient: blank a bad indicator, drop a stray byte after the indicators and keep the record
    # with a warning code (catalog_sync.marc.repair); strict: reject such records.
    marc_strictness: Literal["lenient", "strict"] = "lenient"
    # Change detection (include/catalog_sync/changes/matching.py, protected.py, pipeline/commit.py):
    match_points: list[MatchPoint] = Field(
        default_factory=lambda: list(DEFAULT_MATCH_POINTS),
        description="How a new record finds its ILS copy, strongest first",
    )
    protected_fields: list[str] | None = Field(
        default=None,
        description="Tags kept from the ILS copy (9XX patterns allowed); None: the YAML default",
    )
    drift_policy: Literal["overlay", "skip", "review"] = "review"
    delete_cap_ratio: float = Field(default=0.02, ge=0, le=1)
    # Leases (catalog_sync.leases): each commit of this vendor also holds the branch's lease,
    # so two feeds of one branch never commit at once. None: record and holdings leases only.
    lease_branch: str | None = Field(default=None, description="Koha library (branch) code")
    # Cadence rules on top of `schedule` (catalog_sync.schedule), all in `timezone`.
    maintenance_window: str | None = Field(default=None, description="Local HH:MM-HH:MM")
    business_days_only: bool = False
    blackout_dates: list[date] = Field(default_factory=list)
    min_gap: str | None = Field(default=None, description="Least time between runs, e.g. 20h")
    # Who hears about changed, failed and held runs (catalog_sync.notifications).
    notify_to: list[str] = Field(default_factory=list)
    # A run changing more than this share of the vendor's known records waits for approval.
    change_ratio_threshold: float | None = Field(default=None, gt=0, le=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # A commit task running longer is failed (and retried), so a hung ILS or Redis cannot hold
    # a pool slot forever. 30 min covers a 2,000-record chunk at a few requests per second.
    commit_timeout_minutes: float = Field(default=30, gt=0)

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not v.replace("_", "").isalnum():
            raise ValueError(f"vendor name {v!r} must be letters, digits and underscores")
        return v

    def inbox_path(self, home: Path) -> Path:
        p = Path(self.source.inbox)
        return p if p.is_absolute() else home / p


class ILSConnectionConfig(BaseModel):
    """Per ILS connection: the Airflow pool that bounds concurrent commit tasks."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pool_slots: int = Field(default=4, ge=1)
    description: str = ""


def _read(path: Path | None) -> dict[str, Any]:
    path = path or vendors_file()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with a 'vendors' key")
    return raw


def load_vendors(path: Path | None = None) -> dict[str, VendorConfig]:
    """Read vendors.yaml; a malformed file raises with the vendor and field named."""
    vendors = _read(path).get("vendors") or {}
    return {name: VendorConfig(name=name, **(body or {})) for name, body in vendors.items()}


def load_ils_connections(path: Path | None = None) -> dict[str, ILSConnectionConfig]:
    """ILS connections named by vendors, with their pool sizes (default pool for unlisted ones)."""
    listed = _read(path).get("ils_connections") or {}
    conns = {n: ILSConnectionConfig(name=n, **(b or {})) for n, b in listed.items()}
    for vendor in load_vendors(path).values():
        conns.setdefault(vendor.ils_conn_id, ILSConnectionConfig(name=vendor.ils_conn_id))
    return conns


def pool_specs(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """`airflow pools import` JSON body: one pool per ILS connection, slots = its safe concurrency.

    docker-compose's airflow-init, `make demo` and `make airflow` all provision from this::

        python -c "from catalog_sync.config import pool_specs; import json; \\
                   print(json.dumps(pool_specs()))" > pools.json && airflow pools import pools.json
    """
    return {
        c.name: {"slots": c.pool_slots, "description": c.description, "include_deferred": False}
        for c in load_ils_connections(path).values()
    }
