"""Fetch vendor deliveries over SFTP (paramiko), host-key checking always on."""

from __future__ import annotations

import io
import logging
import posixpath
import socket
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko  # type: ignore[import-untyped]  # no stubs in this venv

from catalog_sync.delivery.errors import (
    DeliveryAuthError,
    DeliveryError,
    DeliveryHostKeyError,
    DeliveryNotFoundError,
    DeliveryTransientError,
)
from catalog_sync.delivery.fetch import (
    AlreadyLoaded,
    FetchPolicy,
    RemoteEntry,
    fetch_from,
    retrying,
)
from catalog_sync.delivery.models import DeliveryReport
from catalog_sync.delivery.safety import UnpackLimits

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
# Errors of a network or a server that may go away on a second try.
_TRANSIENT = (OSError, EOFError, socket.timeout, paramiko.SSHException)


@dataclass(frozen=True)
class SftpLogin:
    """How to reach and authenticate to a vendor's SFTP server (from an Airflow Connection).

    `known_hosts` is an OpenSSH known_hosts file holding the server's key (for a non-22 port
    the host is written `[host]:port`); a server whose key is absent or different is refused.
    """

    host: str
    username: str
    known_hosts: Path
    port: int = 22
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # PEM/OpenSSH text
    key_file: Path | None = None
    key_passphrase: str | None = field(default=None, repr=False)
    timeout: float = 60.0

    @property
    def label(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}"


def _load_key(login: SftpLogin) -> paramiko.PKey | None:
    if login.key_file is not None:
        return paramiko.PKey.from_path(login.key_file, passphrase=login.key_passphrase)
    if not login.private_key:
        return None
    key_types: list[type[paramiko.PKey]] = [
        paramiko.Ed25519Key,
        paramiko.ECDSAKey,
        paramiko.RSAKey,
    ]
    for key_type in key_types:
        try:
            return key_type.from_private_key(
                io.StringIO(login.private_key), password=login.key_passphrase
            )
        except paramiko.SSHException:
            continue
    raise DeliveryAuthError(f"{login.label}: the private key supplied is not a readable key")


class SftpFolder:
    """One remote folder over one SSH connection, reopened on demand after a drop."""

    def __init__(self, login: SftpLogin, remote_dir: str) -> None:
        self.login = login
        self.remote_dir = remote_dir
        self.label = f"{login.label}/{remote_dir.lstrip('/')}"
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def __enter__(self) -> SftpFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._sftp = None

    def reconnect(self) -> None:
        self.close()
        self._connection()

    def _connection(self) -> paramiko.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        login = self.login
        client = paramiko.SSHClient()
        try:
            client.load_host_keys(str(login.known_hosts))
        except OSError as exc:
            raise DeliveryHostKeyError(
                f"{login.label}: cannot read known_hosts {login.known_hosts} ({exc.strerror})"
            ) from exc
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                hostname=login.host,
                port=login.port,
                username=login.username,
                password=login.password,
                pkey=_load_key(login),
                look_for_keys=False,
                allow_agent=False,
                timeout=login.timeout,
                banner_timeout=login.timeout,
                auth_timeout=login.timeout,
            )
            sftp = client.open_sftp()
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(login.timeout)
        except paramiko.AuthenticationException as exc:
            client.close()
            raise DeliveryAuthError(
                f"{login.label}: the server refused the credentials of user "
                f"{login.username!r} on {login.host}:{login.port}; check the login and "
                "password or key of the Airflow Connection (not retried)"
            ) from exc
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise DeliveryHostKeyError(
                f"{login.label}: host key of {login.host}:{login.port} does not match "
                f"known_hosts {login.known_hosts}; refusing to connect"
            ) from exc
        except paramiko.SSHException as exc:
            client.close()
            if "known_hosts" in str(exc):
                raise DeliveryHostKeyError(
                    f"{login.label}: {login.host}:{login.port} is not in known_hosts "
                    f"{login.known_hosts}; add its key (ssh-keyscan) and verify it"
                ) from exc
            raise DeliveryTransientError(f"{login.label}: SSH error ({exc})") from exc
        except (OSError, EOFError) as exc:
            client.close()
            raise DeliveryTransientError(f"{login.label}: cannot connect ({exc})") from exc
        self._client, self._sftp = client, sftp
        return sftp

    def entries(self) -> list[RemoteEntry]:
        sftp = self._connection()
        try:
            attrs = sftp.listdir_attr(self.remote_dir)
        except FileNotFoundError as exc:
            raise DeliveryNotFoundError(f"{self.label}: no such remote folder") from exc
        except _TRANSIENT as exc:
            self.close()
            raise DeliveryTransientError(f"{self.label}: listing failed ({exc})") from exc
        return [
            RemoteEntry(
                name=a.filename,
                size=a.st_size,
                mtime=float(a.st_mtime) if a.st_mtime is not None else None,
                location=posixpath.join(self.remote_dir, a.filename),
            )
            for a in attrs
            if a.st_mode is not None and stat.S_ISREG(a.st_mode)
        ]

    def open(self, entry: RemoteEntry) -> tuple[Iterator[bytes], int | None]:
        sftp = self._connection()
        try:
            remote = sftp.open(entry.location, "rb")
            size = remote.stat().st_size
        except FileNotFoundError as exc:
            raise DeliveryNotFoundError(f"{self.label}: {entry.name} vanished") from exc
        except _TRANSIENT as exc:
            self.close()
            raise DeliveryTransientError(f"{self.label}: cannot open {entry.name} ({exc})") from exc
        return self._chunks(remote, entry.name), size

    def _chunks(self, remote: paramiko.SFTPFile, name: str) -> Iterator[bytes]:
        try:
            with remote:
                while True:
                    chunk = remote.read(_CHUNK)
                    if not chunk:
                        return
                    yield chunk
        except _TRANSIENT as exc:
            self.close()
            raise DeliveryTransientError(f"{self.label}: transfer of {name} broke ({exc})") from exc


def fetch_sftp(
    login: SftpLogin,
    remote_dir: str,
    *,
    landing_dir: Path,
    archive_dir: Path,
    patterns: Sequence[str] = ("*",),
    already_loaded: AlreadyLoaded = lambda name, sha256: False,
    lookback_seconds: float | None = None,
    stable_seconds: float = 30.0,
    max_looks: int = 3,
    done_marker_suffix: str | None = None,
    attempts: int = 3,
    retry_wait_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    now: float | None = None,
    max_unpacked_bytes: int = UnpackLimits.max_bytes,
    max_unpacked_members: int = UnpackLimits.max_members,
) -> DeliveryReport:
    """Fetch new, complete deliveries from an SFTP folder into `landing_dir`.

    Each file lands as landing_dir/<sha256>/<name> (written as a hidden `.partial` and
    renamed once its size is verified); `.gz`/`.zip` deliveries are unpacked; every
    delivery is archived in `archive_dir` under its sha256. Wrong credentials or an unknown
    host key raise at once; transient network errors are retried `attempts` times.

    Example (inside an Airflow task, credentials from a Connection)::

        conn = BaseHook.get_connection(source.conn_id)
        login = SftpLogin(host=conn.host, port=conn.port or 22, username=conn.login,
                          password=conn.password, known_hosts=Path(known_hosts_file),
                          timeout=source.timeout_seconds)
        report = fetch_sftp(login, source.remote_dir, landing_dir=..., archive_dir=...,
                            already_loaded=..., **fetch_options(source))
    """
    policy = FetchPolicy(
        patterns=tuple(patterns),
        lookback_seconds=lookback_seconds,
        stable_seconds=stable_seconds,
        max_looks=max_looks,
        done_marker_suffix=done_marker_suffix,
        attempts=attempts,
        retry_wait_seconds=retry_wait_seconds,
        unpack_limits=UnpackLimits(max_unpacked_bytes, max_unpacked_members),
    )
    with SftpFolder(login, remote_dir) as folder:
        # Connect under the retry policy too: a refused TCP connection is worth a retry,
        # wrong credentials are not (DeliveryAuthError is not transient).
        try:
            for attempt in retrying(policy, sleep):
                with attempt:
                    folder.reconnect()
        except DeliveryTransientError as exc:
            raise DeliveryError(
                f"{login.label}: unreachable after {attempts} attempts ({exc})"
            ) from exc
        return fetch_from(
            folder,
            policy,
            landing_dir=landing_dir,
            archive_dir=archive_dir,
            already_loaded=already_loaded,
            sleep=sleep,
            now=now,
        )
