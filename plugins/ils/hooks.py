"""ILSHook: the Airflow side of an ILS connection; the calls themselves live in catalog_sync.ils."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from airflow.sdk import BaseHook, Connection

from catalog_sync.ils import ILSClient, ILSError, ILSSettings, open_client
from catalog_sync.leases import LeaseSettings

_KNOWN_EXTRAS = (
    "flavour",
    "tenant",
    "rate_limit",
    "burst",
    "max_concurrency",
    "timeout",
    "verify",
    "client_id",
    "client_secret",
    "max_attempts",
    "retry_deadline",
    "lease_ttl",
    "lease_wait",
)


class ILSHook(BaseHook):
    """Reads an ILS Connection (default `ils_default`) and opens rate-limited ILS clients.

    Connection fields: host (may include the scheme, like HttpHook), schema (http/https),
    port, login/password (Basic auth; FOLIO's login). Extras: `flavour` (`koha` or `folio`),
    `tenant` (FOLIO only: X-Okapi-Tenant), `rate_limit` (requests/s,
    shared by all workers through Redis), `burst`, `max_concurrency`, `timeout` (seconds),
    `verify` (TLS verification), `client_id`/`client_secret` (OAuth2 client credentials,
    preferred over Basic when given), `max_attempts`, `retry_deadline`, `lease_ttl` and
    `lease_wait` (seconds: the Redis leases on this ILS's records; lease_wait >= lease_ttl).
    Unknown extras are refused (unlike HttpHook, which sends them as headers): a typo must not
    drop a limit.

    Create the hook inside the task, never at DAG parse time::

        @task
        def commit_chunk(ref: dict) -> dict:
            hook = ILSHook()
            return asyncio.run(commit(ref, hook.client(redis_url)))

    Retrying is declarative inside the client (tenacity: exponential backoff with jitter on
    429 honouring Retry-After, on 5xx and timeouts; never on other 4xx), and a circuit breaker
    makes a task fail fast with ILSUnavailable naming the ILS, so Airflow retries it later.
    """

    conn_name_attr = "ils_conn_id"
    default_conn_name = "ils_default"
    conn_type = "http"
    hook_name = "ILS (Koha REST API)"

    def __init__(self, ils_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ils_conn_id = ils_conn_id

    def get_conn(self) -> ILSSettings:
        """The connection as ILSSettings (the hook's "connection" is its settings)."""
        conn = self.get_connection(self.ils_conn_id)
        return self._settings_from(conn)

    def settings(self) -> ILSSettings:
        return self.get_conn()

    def client(self, redis_url: str | None = None) -> ILSClient:
        """An async ILS client; use as `async with hook.client(url) as ils: ...`."""
        return open_client(self.get_conn(), redis_url)

    def test_connection(self) -> tuple[bool, str]:
        """One authenticated read against the ILS: (ok, message for the operator)."""
        try:
            settings = self.get_conn()
        except (ValueError, ILSError) as exc:
            return False, f"Connection {self.ils_conn_id!r} is not usable: {exc}"
        quick = settings.model_copy(update={"max_attempts": 1, "rate_limit": None})

        async def probe() -> str:
            async with open_client(quick) as ils:
                return await ils.check_access(correlation_id=f"test-connection-{self.ils_conn_id}")

        try:
            return True, asyncio.run(probe())
        except ILSError as exc:
            return False, str(exc)

    def _settings_from(self, conn: Connection) -> ILSSettings:
        extras = self._extras(conn)
        self.log.debug("Reading ILS connection %s", self.ils_conn_id)
        return ILSSettings(
            name=self.ils_conn_id,
            base_url=self._base_url(conn),
            username=conn.login or None,
            password=conn.password if conn.login else None,
            **extras,
        )

    @staticmethod
    def _base_url(conn: Connection) -> str:
        """schema://host:port like HttpHook; a host that already has a scheme keeps it."""
        host = (conn.host or "").rstrip("/")
        if not host:
            raise ValueError("the ILS connection has no host")
        if "://" not in host:
            host = f"{conn.schema or 'http'}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
        return host

    @staticmethod
    def _extras(conn: Connection) -> dict[str, Any]:
        """ILSSettings fields from the extras; copies extra_dejson, never mutates it."""
        extra = dict(conn.extra_dejson)
        settings: dict[str, Any] = {}
        if "flavour" in extra:
            settings["flavour"] = str(extra.pop("flavour")).lower()
        if "verify" in extra or "verify_ssl" in extra:
            raw = extra.pop("verify", extra.pop("verify_ssl", True))
            settings["verify_tls"] = raw if isinstance(raw, bool) else str(raw).lower() != "false"
        for key in ("rate_limit", "burst", "timeout", "retry_deadline", "lease_ttl", "lease_wait"):
            value = extra.pop(key, None)
            if value not in (None, ""):
                settings[key] = float(value)
        for key in ("max_concurrency", "max_attempts"):
            value = extra.pop(key, None)
            if value not in (None, ""):
                settings[key] = int(value)
        for key in ("client_id", "client_secret", "tenant"):
            value = extra.pop(key, None)
            if value:
                settings[key] = str(value)
        if extra:
            # A misspelt "rate_limit" silently ignored would mean no rate limit at all.
            raise ValueError(f"unknown extras {sorted(extra)}; known: {', '.join(_KNOWN_EXTRAS)}")
        return settings


def lease_settings(connections: Iterable[ILSSettings]) -> LeaseSettings:
    """Lease timings for a task writing to these ILS connections (their `lease_ttl` and
    `lease_wait` extras): the longest of each, so no lease it takes outlives what it waits.
    How many leases it holds at once is the commit's to widen (pipeline.bounded)."""
    chosen = list(connections)
    if not chosen:
        return LeaseSettings()
    ttl, wait = max(c.lease_ttl for c in chosen), max(c.lease_wait for c in chosen)
    return LeaseSettings(ttl=ttl, wait=wait)
