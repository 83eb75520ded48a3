"""Talking to the ILS: the ILSClient contract, its adapters (Koha first) and their settings."""

from __future__ import annotations

from collections.abc import Callable

from catalog_sync.ils.client import ILSClient
from catalog_sync.ils.errors import (
    ILSAuthError,
    ILSConflict,
    ILSError,
    ILSNotFound,
    ILSRejected,
    ILSUnavailable,
)
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.ils.koha import KohaAdapter
from catalog_sync.ils.settings import ILSSettings

AdapterFactory = Callable[[ILSSettings, str | None], ILSClient]

# One entry per ILS flavour; the pipeline stays as it is whichever the Connection names.
ADAPTERS: dict[str, AdapterFactory] = {"koha": KohaAdapter, "folio": FolioAdapter}


def open_client(settings: ILSSettings, redis_url: str | None = None) -> ILSClient:
    """A client for the settings' flavour; with `redis_url` its rate limit is shared by every
    process using that Redis. Use as `async with open_client(s, url) as ils: ...`."""
    try:
        factory = ADAPTERS[settings.flavour]
    except KeyError as exc:
        raise ILSError(f"no ILS adapter for flavour {settings.flavour!r}") from exc
    return factory(settings, redis_url)


__all__ = [
    "ADAPTERS",
    "FolioAdapter",
    "ILSAuthError",
    "ILSClient",
    "ILSConflict",
    "ILSError",
    "ILSNotFound",
    "ILSRejected",
    "ILSSettings",
    "ILSUnavailable",
    "KohaAdapter",
    "open_client",
]
