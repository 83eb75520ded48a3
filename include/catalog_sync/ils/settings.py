"""How to reach one ILS: endpoint, credentials and the limits we keep to."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ILSSettings(BaseModel):
    """One ILS connection (an Airflow Connection becomes one of these in ILSHook)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="ils_default", description="connection id, named in error messages")
    base_url: str
    flavour: Literal["koha", "folio"] = "koha"
    tenant: str | None = Field(default=None, description="FOLIO tenant (X-Okapi-Tenant)")
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = Field(default=None, repr=False)
    rate_limit: float | None = Field(default=None, gt=0, description="requests/s over all workers")
    burst: float = Field(default=1.0, ge=1, description="requests allowed back to back")
    max_concurrency: int = Field(default=8, ge=1, le=256)
    timeout: float = Field(default=30.0, gt=0, description="seconds per request")
    verify_tls: bool = True
    max_attempts: int = Field(default=8, ge=1, le=20, description="tries per call")
    retry_deadline: float = Field(default=120.0, gt=0, description="seconds of retrying per call")
    breaker_threshold: int = Field(default=10, ge=1, description="consecutive failures to open")
    breaker_reset: float = Field(default=15.0, gt=0, description="seconds open before a probe")

    @property
    def label(self) -> str:
        """How messages name this ILS: connection id and where it is."""
        return f"ILS {self.name!r} at {self.base_url}"
