"""Serving an emulator app: one uvicorn setup for the Koha and the FOLIO modes."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def serve(app: Any, args: argparse.Namespace) -> int:
    """Run `app` on args.host:args.port until interrupted, logging at args.log_level."""
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        # A client's X-Forwarded-* never changes what the emulator sees, and no Server header
        # claims to be uvicorn; a stop ends open requests within 2 s.
        proxy_headers=False,
        server_header=False,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0
