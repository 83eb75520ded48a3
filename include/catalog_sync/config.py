"""Vendor configuration (include/config/vendors.yaml) as typed, validated models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog_sync.paths import CONFIG_DIR


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["local", "sftp", "https"] = "local"
    inbox: str = Field(description="Local folder (relative to CATALOG_SYNC_HOME unless absolute)")
    patterns: list[str] = Field(default_factory=lambda: ["*.mrc", "*.xml"])


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
    path = path or CONFIG_DIR / "vendors.yaml"
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
