"""Everything one running emulator holds: settings, catalog, tokens, faults and counters."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from catalog_sync.emulator.faults import FaultInjector, FaultProfile, TokenBucket
from catalog_sync.emulator.store import CatalogStore

DEFAULT_USER = "catalog"
DEFAULT_PASSWORD = "catalog-demo"  # the documented demo credential
DEFAULT_CLIENT_ID = "catalog-sync"
DEFAULT_CLIENT_SECRET = "catalog-sync-demo"  # the documented demo credential
DEFAULT_TOKEN_TTL = 3600


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; only staff may write (Koha: editcatalogue permission)."""

    can_edit: bool


STAFF = Principal(can_edit=True)
READER = Principal(can_edit=False)


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator was started (the command line, or a test)."""

    db: Path | None = None
    rate_limit: float | None = None
    burst: float | None = None
    faults: FaultProfile = field(default_factory=lambda: FaultProfile())
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    readonly_user: str | None = None
    readonly_password: str = ""
    token_ttl: int = DEFAULT_TOKEN_TTL
    page_size: int = 20
    # A random token the starter chose: GET /_emulator/identity tells its own emulator apart.
    identity: str | None = None
    # Koha system preferences the emulated instance runs with (defaults: as the project's
    # README says a library should set them).
    basic_auth: bool = True  # RESTBasicAuth
    oauth2_client_credentials: bool = True  # RESTOAuth2ClientCredentials
    auto_control_number: bool = False  # autoControlNumber: "biblionumber" (True) or "OFF"


class EmulatorState:
    """Mutable state of one emulator; only touched from its event loop."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = CatalogStore(config.db)
        self.faults = FaultInjector(config.faults)
        self.bucket = TokenBucket(config.rate_limit, config.burst) if config.rate_limit else None
        self.tokens: dict[str, float] = {}
        self.counters: Counter[str] = Counter()

    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None:
        self.bucket = TokenBucket(rate, burst) if rate else None

    def issue_token(self, client_id: str, client_secret: str) -> str | None:
        ok_id = hmac.compare_digest(client_id.encode(), self.config.client_id.encode())
        ok_secret = hmac.compare_digest(client_secret.encode(), self.config.client_secret.encode())
        if not (ok_id and ok_secret):
            return None
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.config.token_ttl
        self.counters["tokens_issued"] += 1
        return token

    def expire_tokens(self) -> int:
        """Make every issued token expired now (tests of refresh-on-401)."""
        for token in self.tokens:
            self.tokens[token] = 0.0
        return len(self.tokens)

    def authenticate(self, header: str | None) -> Principal | None:
        """Who sent the Authorization header; None means Koha's 401 "Authentication failure."."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            expires = self.tokens.get(value.strip())
            return STAFF if expires is not None and expires > time.monotonic() else None
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        accounts = [(self.config.user, self.config.password, STAFF)]
        if self.config.readonly_user:
            accounts.append((self.config.readonly_user, self.config.readonly_password, READER))
        for known_user, known_password, principal in accounts:
            ok_user = hmac.compare_digest(user.encode(), known_user.encode())
            ok_pass = hmac.compare_digest(password.encode(), known_password.encode())
            if ok_user and ok_pass:
                return principal
        return None
