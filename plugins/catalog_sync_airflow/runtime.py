"""Runtime settings read when a task runs (never while a DAG file is parsed)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.exceptions import AirflowNotFoundException
from airflow.sdk import BaseHook, Variable
from airflow.sdk.exceptions import AirflowFailException

from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.paths import RuntimeLayout, layout, runtime_home
from catalog_sync.pipeline.fetch import RemoteFetch
from catalog_sync.privacy import Masker, load_policy
from catalog_sync.storage import SharedStorage

PII_CONNECTION = "catalog_sync_pii"
HOME_VARIABLE = "catalog_sync_home"
REDIS_VARIABLE = "catalog_sync_redis_url"
STATE_URL_VARIABLE = "catalog_sync_state_url"
STORAGE_URL_VARIABLE = "catalog_sync_storage_url"
STORAGE_CONN_VARIABLE = "catalog_sync_storage_conn_id"


@dataclass(frozen=True)
class TaskRuntime:
    vendor: VendorConfig
    layout: RuntimeLayout
    redis_url: str | None
    storage_url: str | None = None
    storage_conn_id: str | None = None

    @cached_property
    def storage(self) -> SharedStorage:
        """The run storage, connected on first use (tasks that never touch files never connect)."""
        return run_storage(self.layout.root, self.storage_url, self.storage_conn_id)

    def state(self) -> StateStore:
        return StateStore(_variable(STATE_URL_VARIABLE, None) or self.layout.state_url)


def _variable(key: str, default: str | None) -> str | None:
    value = Variable.get(key, default=default)
    return str(value) if value is not None else None


def task_runtime(vendor_name: str) -> TaskRuntime:
    redis_url = _variable(REDIS_VARIABLE, os.environ.get("REDIS_URL"))
    return TaskRuntime(load_vendors()[vendor_name], _home(), redis_url, *_storage_settings())


def runtime_storage() -> tuple[RuntimeLayout, SharedStorage]:
    """This worker's folder and the run storage, for plugin code outside a vendor's tasks."""
    home = _home()
    return home, run_storage(home.root, *_storage_settings())


def _home() -> RuntimeLayout:
    return layout(_variable(HOME_VARIABLE, str(runtime_home())))


def _storage_settings() -> tuple[str | None, str | None]:
    """(storage URL, Connection id): the Variables, else CATALOG_SYNC_STORAGE_URL / _CONN_ID."""
    return (
        _variable(STORAGE_URL_VARIABLE, os.environ.get("CATALOG_SYNC_STORAGE_URL")),
        _variable(STORAGE_CONN_VARIABLE, os.environ.get("CATALOG_SYNC_STORAGE_CONN_ID")),
    )


def run_storage(
    home: Path, url: str | None, conn_id: str | None, *, fresh: bool = False
) -> SharedStorage:
    """The run storage at `url` through Airflow's ObjectStoragePath; unset: the local `home`.

    The filesystem is the one ObjectStoragePath would attach for the URL's scheme and the
    Connection (the provider's get_fs), given host-key checking for sftp (_storage_options).
    The path is built without conn_id on purpose: with one, ObjectStoragePath attaches (and,
    for sftp, connects) a filesystem of its own that drops those options, cached for the
    process's life. `fresh` (the long-lived API server) opens a new connection for each use.
    """
    if not url:
        return SharedStorage.local(home)
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.fs import get_fs

    scheme = urlsplit(url).scheme or "file"
    options = _storage_options(scheme, conn_id)
    if fresh:
        options["skip_instance_cache"] = True
    if scheme in ("sftp", "ssh"):
        logging.getLogger("asyncssh").setLevel(logging.WARNING)  # one line per SFTP call at INFO
    root = ObjectStoragePath(url)
    return SharedStorage.at(root, home, fs=get_fs(scheme, conn_id, options))


def _storage_options(scheme: str, conn_id: str | None) -> dict[str, Any]:
    """sshfs checks no host key unless given known_hosts: always check, as deliveries do.

    The Connection's extra names the file (`known_hosts`, default ~/.ssh/known_hosts); only an
    explicit `no_host_key_check: true` turns checking off (the provider then passes None).
    """
    if scheme not in ("sftp", "ssh") or conn_id is None:
        return {}
    extra = BaseHook.get_connection(conn_id).extra_dejson
    if str(extra.get("no_host_key_check", "")).lower() == "true":
        return {}
    return {"known_hosts": str(Path(extra.get("known_hosts", "~/.ssh/known_hosts")).expanduser())}


def pii_masker() -> Masker:
    """The PII masker; its HMAC key is the password of the `catalog_sync_pii` Connection."""
    try:
        key = BaseHook.get_connection(PII_CONNECTION).password
    except AirflowNotFoundException as exc:
        raise AirflowFailException(
            f"Airflow Connection {PII_CONNECTION!r} is missing: its password is the secret key "
            "for masking PII (create it, or let `make demo` / `make airflow` provision it)"
        ) from exc
    return Masker(load_policy(), key)


def remote_fetch(vendor: VendorConfig) -> RemoteFetch | None:
    """fetch_sftp / fetch_https bound to the credentials of the source's Airflow Connection."""
    source = vendor.source.delivery
    if source is None:
        return None
    # Here, not at the top: every task process imports this module while it parses the DAG
    # file, and the SFTP client (paramiko) took over a third of a task's start-up under load
    # (bench/results/2026-12-01-throughput); only fetch needs it.
    from catalog_sync.delivery import SftpLogin, fetch_https, fetch_options, fetch_sftp

    conn = BaseHook.get_connection(source.conn_id)
    extra = dict(conn.extra_dejson)
    options = fetch_options(source)
    if source.kind == "sftp":
        login = SftpLogin(
            host=conn.host or "",
            port=conn.port or 22,
            username=conn.login or "",
            password=conn.password or None,
            private_key=extra.get("private_key"),
            key_file=Path(extra["key_file"]) if extra.get("key_file") else None,
            # Host-key checking is always on: the Connection names the known_hosts file.
            known_hosts=Path(extra.get("known_hosts", "~/.ssh/known_hosts")).expanduser(),
            timeout=source.timeout_seconds,
        )
        return lambda landing, archive, loaded: fetch_sftp(
            login, source.remote_dir, landing_dir=landing, archive_dir=archive,
            already_loaded=loaded, **options,
        )  # fmt: skip
    url = source.url or f"https://{conn.host}/{source.remote_dir.lstrip('/')}"
    return lambda landing, archive, loaded: fetch_https(
        url, landing_dir=landing, archive_dir=archive, username=conn.login or None,
        password=conn.password or None, token=extra.get("token"),
        verify=extra.get("verify", True), already_loaded=loaded,
        timeout=source.timeout_seconds, allowed_origins=source.allowed_origins, **options,
    )  # fmt: skip
