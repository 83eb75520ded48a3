"""Everything one FOLIO emulator holds: settings, tenants, tokens, storage, faults, counters."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from catalog_sync.emulator.faults import FaultInjector, FaultProfile, TokenBucket
from catalog_sync.emulator.folio.refdata import ReferenceData
from catalog_sync.emulator.folio.store import FolioStore
from catalog_sync.emulator.state import DEFAULT_PASSWORD, DEFAULT_USER

DEFAULT_TENANT = "diku"  # the tenant of FOLIO's reference environments
# mod-login's example cookie lifetimes (login.raml): 10 minutes and 7 days.
DEFAULT_ACCESS_TTL = 600
DEFAULT_REFRESH_TTL = 604800


@dataclass(frozen=True)
class FolioConfig:
    """How the FOLIO emulator was started (the command line, or a test)."""

    db: Path | None = None
    rate_limit: float | None = None
    burst: float | None = None
    faults: FaultProfile = field(default_factory=lambda: FaultProfile())
    tenants: tuple[str, ...] = (DEFAULT_TENANT,)
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    access_ttl: int = DEFAULT_ACCESS_TTL
    refresh_ttl: int = DEFAULT_REFRESH_TTL
    max_batch: int = 1000  # records per batch request before 413
    # A random token the starter chose: GET /_emulator/identity tells its own emulator apart.
    identity: str | None = None


@dataclass
class Session:
    tenant: str
    expires: float  # time.monotonic()


@dataclass(frozen=True)
class IssuedTokens:
    access: str
    refresh: str
    access_expires: datetime
    refresh_expires: datetime


class TokenCheck(StrEnum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


class FolioState:
    """Mutable state of one emulator; only touched from its event loop."""

    def __init__(self, config: FolioConfig) -> None:
        self.config = config
        self.store = FolioStore(config.db)
        self.reference = ReferenceData()
        self.faults = FaultInjector(config.faults)
        self.bucket = TokenBucket(config.rate_limit, config.burst) if config.rate_limit else None
        self.counters: Counter[str] = Counter()
        self.access: dict[str, Session] = {}
        self.refresh: dict[str, Session] = {}

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        self.bucket = TokenBucket(rate, burst) if rate else None

    def credentials_ok(self, username: str, password: str) -> bool:
        ok_user = hmac.compare_digest(username.encode(), self.config.user.encode())
        ok_pass = hmac.compare_digest(password.encode(), self.config.password.encode())
        return ok_user and ok_pass

    def issue(self, tenant: str) -> IssuedTokens:
        now, wall = time.monotonic(), datetime.now(UTC)
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access[access] = Session(tenant, now + self.config.access_ttl)
        self.refresh[refresh] = Session(tenant, now + self.config.refresh_ttl)
        self.counters["tokens_issued"] += 1
        return IssuedTokens(
            access,
            refresh,
            wall + timedelta(seconds=self.config.access_ttl),
            wall + timedelta(seconds=self.config.refresh_ttl),
        )

    def use_refresh(self, token: str, tenant: str) -> bool:
        """Refresh tokens are single use: a second use of the same one is refused."""
        session = self.refresh.pop(token, None)
        return (
            session is not None and session.tenant == tenant and session.expires > time.monotonic()
        )

    def check_access(self, token: str | None, tenant: str) -> TokenCheck:
        if not token:
            return TokenCheck.MISSING
        session = self.access.get(token)
        if session is None or session.tenant != tenant:
            return TokenCheck.INVALID
        if session.expires <= time.monotonic():
            return TokenCheck.EXPIRED
        return TokenCheck.OK

    def expire_tokens(self) -> int:
        """Every access token expires now (tests of refresh-on-401); refresh tokens stay."""
        for session in self.access.values():
            session.expires = 0.0
        return len(self.access)

    def revoke_all(self) -> int:
        """Every access and refresh token is gone (a revoked session mid-run)."""
        count = len(self.access) + len(self.refresh)
        self.access.clear()
        self.refresh.clear()
        return count
