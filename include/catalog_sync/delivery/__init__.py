"""Vendor delivery over SFTP and HTTPS: complete files only, landed safely, archived by hash."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Every task process parses the DAG file, which reads the vendor config, which needs only
# delivery.models: importing the SFTP and HTTPS clients (paramiko, ~0.25 s; 0.6 s in all, more
# under load) there would be paid by each commit task before its first ILS request. So the
# package's names load on first use; type checkers see them as plain imports.
if TYPE_CHECKING:
    from catalog_sync.delivery.archive import archive_delivery, purge_archive
    from catalog_sync.delivery.errors import (
        DeliveryAuthError,
        DeliveryError,
        DeliveryHostKeyError,
        DeliveryIntegrityError,
        DeliveryNotFoundError,
        DeliveryTransientError,
        DeliveryUnavailableError,
        DeliveryUnpackError,
    )
    from catalog_sync.delivery.fetch import FetchPolicy, RemoteEntry, fetch_from, fetch_options
    from catalog_sync.delivery.https import HttpsFolder, fetch_https
    from catalog_sync.delivery.models import DeliveryReport, DeliverySource, FetchedFile
    from catalog_sync.delivery.sftp import SftpFolder, SftpLogin, fetch_sftp

_WHERE: dict[str, str] = {
    "archive_delivery": "catalog_sync.delivery.archive",
    "purge_archive": "catalog_sync.delivery.archive",
    "DeliveryAuthError": "catalog_sync.delivery.errors",
    "DeliveryError": "catalog_sync.delivery.errors",
    "DeliveryHostKeyError": "catalog_sync.delivery.errors",
    "DeliveryIntegrityError": "catalog_sync.delivery.errors",
    "DeliveryNotFoundError": "catalog_sync.delivery.errors",
    "DeliveryTransientError": "catalog_sync.delivery.errors",
    "DeliveryUnavailableError": "catalog_sync.delivery.errors",
    "DeliveryUnpackError": "catalog_sync.delivery.errors",
    "FetchPolicy": "catalog_sync.delivery.fetch",
    "RemoteEntry": "catalog_sync.delivery.fetch",
    "fetch_from": "catalog_sync.delivery.fetch",
    "fetch_options": "catalog_sync.delivery.fetch",
    "HttpsFolder": "catalog_sync.delivery.https",
    "fetch_https": "catalog_sync.delivery.https",
    "DeliveryReport": "catalog_sync.delivery.models",
    "DeliverySource": "catalog_sync.delivery.models",
    "FetchedFile": "catalog_sync.delivery.models",
    "SftpFolder": "catalog_sync.delivery.sftp",
    "SftpLogin": "catalog_sync.delivery.sftp",
    "fetch_sftp": "catalog_sync.delivery.sftp",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "DeliveryAuthError",
    "DeliveryError",
    "DeliveryHostKeyError",
    "DeliveryIntegrityError",
    "DeliveryNotFoundError",
    "DeliveryReport",
    "DeliverySource",
    "DeliveryTransientError",
    "DeliveryUnavailableError",
    "DeliveryUnpackError",
    "FetchPolicy",
    "FetchedFile",
    "HttpsFolder",
    "RemoteEntry",
    "SftpFolder",
    "SftpLogin",
    "archive_delivery",
    "fetch_from",
    "fetch_https",
    "fetch_options",
    "fetch_sftp",
    "purge_archive",
]
