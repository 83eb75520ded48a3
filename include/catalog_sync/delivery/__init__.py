"""Vendor delivery over SFTP and HTTPS: complete files only, landed safely, archived by hash."""

from __future__ import annotations

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
