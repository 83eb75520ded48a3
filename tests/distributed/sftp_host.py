"""The storage host's SFTP server as a process of its own (it runs inside the host's namespace).

    python -m tests.distributed.sftp_host --bind ADDR --port N --root DIR --host-key FILE

The same server the delivery and storage tests use in a thread (tests/sftp_server.py), with the
same login; here it must outlive no test and share no memory with the test process, so the
storage is reached only over the network, as a worker on another machine reaches it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import asyncssh
from tests.sftp_server import ServerState, _sftp_factory, _SshServer


async def serve(bind: str, port: int, root: Path, host_key: Path) -> None:
    state = ServerState(root=root)
    await asyncssh.listen(
        bind,
        port,
        server_host_keys=[asyncssh.read_private_key(str(host_key))],
        server_factory=lambda: _SshServer(state),
        sftp_factory=_sftp_factory(state),
        allow_scp=False,
    )
    print(f"sftp listening on {bind}:{port}", flush=True)
    await asyncio.Event().wait()  # until SIGTERM/SIGKILL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--host-key", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.bind, args.port, args.root, args.host_key))


if __name__ == "__main__":
    main()
