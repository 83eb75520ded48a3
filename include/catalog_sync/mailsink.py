"""A local SMTP sink for `make airflow`: accepts every notice and keeps it as a file, sends none.

    python -m catalog_sync.mailsink --port 8025 --dir var/mail

Each message is written whole to <dir>/<UTC time>-<n>.eml (open it with any mail reader).
It listens on loopback only and relays nothing: the notices of a local Airflow become visible
without a mail server. A real deployment points Connection `smtp_default` at its own server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog_sync.ownservices import mail_answers, record_service, reusable
from catalog_sync.services import start_mail_sink

SERVICE = "mail"  # its record: run/mail.json (catalog_sync.ownservices)


class MailFolder:
    """aiosmtpd handler: every accepted message becomes one .eml file in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seq = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{next(self._seq)}.eml"
        tmp = self.folder / f".{name}.partial"
        tmp.write_bytes(bytes(envelope.original_content or envelope.content))
        os.replace(tmp, self.folder / name)  # a reader never sees half a message
        return "250 OK: kept by the Catalog Sync mail sink"


def smtp_connection_uri(port: int, host: str = "127.0.0.1") -> str:
    """The smtp_default Connection (Airflow URI form) for the sink: plain SMTP, no login."""
    return f"smtp://{host}:{port}?disable_tls=true&disable_ssl=true&timeout=10&retry_limit=1"


def ensure_mail_sink(run_dir: Path, folder: Path) -> str:
    """The sink's smtp_default Connection URI: our recorded sink if it still greets with its
    identity, else one started now (detached) on a free port."""
    sink = reusable(run_dir, SERVICE, mail_answers)
    if sink is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        sink = record_service(run_dir, start_mail_sink(run_dir, folder, detach=True))
    return smtp_connection_uri(sink.port)


def serve(folder: Path, port: int, host: str = "127.0.0.1", identity: str = "") -> None:
    """Run the sink until SIGTERM or SIGINT; `identity` goes into its 220 greeting."""
    from aiosmtpd.controller import Controller  # only the sink's own process needs it

    ident = f"catalog-sync-mailsink {identity}".strip()
    controller = Controller(MailFolder(folder), hostname=host, port=port, ident=ident)
    controller.start()
    print(f"mail sink on smtp://{host}:{port}, keeping messages in {folder}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()
        loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m catalog_sync.mailsink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="folder the messages go to")
    parser.add_argument("--identity", default="", help="token for the 220 greeting (its starter)")
    args = parser.parse_args(argv)
    serve(args.dir, args.port, identity=args.identity)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
