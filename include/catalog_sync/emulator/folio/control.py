"""The FOLIO emulator's /_emulator/ routes: the same audit and fault controls as the Koha mode."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from catalog_sync.emulator.controlroutes import register_control as shared_control
from catalog_sync.emulator.folio.refdata import TABLES

if TYPE_CHECKING:
    from catalog_sync.emulator.folio.state import FolioState


def register_control(app: FastAPI, state: FolioState) -> None:
    """The shared control routes (controlroutes.py) and FOLIO's own: token revocation and the
    tenant's reference data."""
    store = state.store

    def reset() -> None:
        store.reset()
        state.reference.reset()

    shared_control(app, state, flavour="folio", reset=reset)

    @app.post("/_emulator/tokens/revoke")
    async def revoke_tokens() -> dict[str, int]:
        return {"revoked": state.revoke_all()}

    @app.post("/_emulator/reference")
    async def add_reference(request: Request) -> Any:
        """A library's own locations, material types, loan types (`locations`, `mtypes`,
        `loantypes` lists): set up by a test as a FOLIO admin would in Settings."""
        body = json.loads(await request.body() or b"{}")
        added: dict[str, list[str]] = {}
        try:
            for table in TABLES:
                for record in body.get(table.list_key, []):
                    added.setdefault(table.list_key, []).append(
                        state.reference.add(table, record)["id"]
                    )
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return added
