"""A real SFTP server on loopback (asyncssh, generated host key) for delivery tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
import pytest

from catalog_sync.delivery import SftpLogin

USER, PASSWORD = "vendor_acme", "s3cret-Pa55"


@dataclass
class ServerState:
    """What the test server saw, and the faults it is told to inject."""

    root: Path
    connections: int = 0
    auth_attempts: int = 0
    drops_left: int = 0  # abort the connection on this many reads past the first 32 KiB
    dropped_files: list[str] = field(default_factory=list)
    # A hostile server: a file on disk is listed under another name (e.g. "../../x.mrc").
    listed_as: dict[str, bytes] = field(default_factory=dict)


@dataclass
class SftpServer:
    port: int
    state: ServerState
    known_hosts: Path

    def login(self, password: str = PASSWORD, known_hosts: Path | None = None) -> SftpLogin:
        return SftpLogin(
            host="127.0.0.1",
            port=self.port,
            username=USER,
            password=password,
            known_hosts=known_hosts or self.known_hosts,
            timeout=10,
        )

    def airflow_connection(self) -> str:
        """The server as an Airflow Connection (AIRFLOW_CONN_<ID>), host key checked."""
        return json.dumps(
            {
                "conn_type": "sftp",
                "host": "127.0.0.1",
                "port": self.port,
                "login": USER,
                "password": PASSWORD,
                "extra": {"known_hosts": str(self.known_hosts)},
            }
        )


class _SshServer(asyncssh.SSHServer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.state.connections += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self.state.auth_attempts += 1
        return (username, password) == (USER, PASSWORD)


def _sftp_factory(state: ServerState) -> type[asyncssh.SFTPServer]:
    class _Sftp(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
            super().__init__(chan, chroot=str(state.root).encode())

        def read(self, file_obj: object, offset: int, size: int) -> bytes:
            if state.drops_left and offset >= 32768:
                state.drops_left -= 1
                state.dropped_files.append(str(offset))
                self.connection.abort()  # the TCP connection goes away mid-transfer
            data: bytes = super().read(file_obj, offset, size)
            return data

        async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
            async for entry in super().scandir(path):
                name = entry.filename
                text = name.decode() if isinstance(name, bytes) else name
                if text in state.listed_as:
                    entry.filename = state.listed_as[text]
                yield entry

    return _Sftp


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    root = tmp_path / "vendor"
    root.mkdir()
    state = ServerState(root=root)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            server_factory=lambda: _SshServer(state),
            sftp_factory=_sftp_factory(state),
            allow_scp=False,
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    port = acceptor.get_port()
    known_hosts = tmp_path / "known_hosts"
    public = host_key.export_public_key("openssh").decode().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    try:
        yield SftpServer(port=port, state=state, known_hosts=known_hosts)
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
