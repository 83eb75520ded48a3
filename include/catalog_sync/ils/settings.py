"""How to reach one ILS: endpoint, credentials and the limits we keep to."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    # Leases on this ILS's records (catalog_sync.leases; defaults are LeaseSettings'): a dead
    # worker's records are free again lease_ttl after its last renewal, and a commit waits up
    # to lease_wait for a record another run holds before its task fails to be retried.
    lease_ttl: float = Field(default=30.0, gt=0, description="seconds a record lease lives")
    lease_wait: float = Field(default=60.0, gt=0, description="seconds to wait for a lease")

    @model_validator(mode="after")
    def _wait_outlasts_a_lease(self) -> Self:
        # A waiter that gives up before a dead holder's lease runs out fails every run that
        # meets that holder's records, though waiting a little longer would have done.
        if self.lease_wait < self.lease_ttl:
            raise ValueError(
                f"lease_wait ({self.lease_wait:g} s) must be at least lease_ttl "
                f"({self.lease_ttl:g} s): a commit must outwait a dead worker's lease"
            )
        return self

    @property
    def label(self) -> str:
        """How messages name this ILS: connection id and where it is."""
        return f"ILS {self.name!r} at {self.base_url}"
