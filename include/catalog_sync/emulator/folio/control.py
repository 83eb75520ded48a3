"""The FOLIO emulator's /_emulator/ routes: the same audit and fault controls as the Koha mode."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from catalog_sync.emulator.faults import FaultProfile
from catalog_sync.emulator.folio.refdata import TABLES

if TYPE_CHECKING:
    from catalog_sync.emulator.folio.state import FolioState


def register_control(app: FastAPI, state: FolioState) -> None:
    """Paths and bodies match the Koha mode's, so EmulatorControl drives either."""
    store = state.store

    def counters() -> dict[str, int]:
        result = dict(state.counters)
        result["writes"] = sum(store.write_counts().values())
        return result

    def fault_status() -> dict[str, Any]:
        bucket = state.bucket
        return {
            "profile": state.faults.profile.model_dump(),
            "down_remaining": round(state.faults.down_remaining, 3),
            "rate_limit": bucket.rate if bucket else None,
            "burst": bucket.capacity if bucket else None,
        }

    @app.get("/_emulator/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "flavour": "folio"}

    @app.get("/_emulator/identity")
    async def identity() -> dict[str, Any]:
        # Who started this process (devstack's service record): its token and its pid.
        return {"identity": state.config.identity, "pid": os.getpid()}

    @app.get("/_emulator/writes")
    async def writes(since: int = 0) -> dict[str, Any]:
        return {
            "writes": store.writes(since),
            "counters": counters(),
            "by_kind": store.write_counts(),
        }

    @app.get("/_emulator/counters")
    async def get_counters() -> dict[str, int]:
        return counters()

    @app.get("/_emulator/faults")
    async def get_faults() -> dict[str, Any]:
        return fault_status()

    @app.post("/_emulator/faults")
    async def set_faults(request: Request) -> Any:
        body = json.loads(await request.body() or b"{}")
        if "rate_limit" in body or "burst" in body:
            state.set_rate_limit(body.pop("rate_limit", None), body.pop("burst", None))
        try:
            state.faults.apply(FaultProfile.model_validate(body))
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return fault_status()

    @app.delete("/_emulator/faults")
    async def clear_faults() -> dict[str, Any]:
        state.faults.apply(FaultProfile())
        state.set_rate_limit(state.config.rate_limit, state.config.burst)
        return fault_status()

    @app.post("/_emulator/tokens/expire")
    async def expire_tokens() -> dict[str, int]:
        return {"expired": state.expire_tokens()}

    @app.post("/_emulator/tokens/revoke")
    async def revoke_tokens() -> dict[str, int]:
        return {"revoked": state.revoke_all()}

    @app.post("/_emulator/reset")
    async def reset() -> dict[str, str]:
        store.reset()
        state.reference.reset()
        state.counters.clear()
        return {"status": "reset"}

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
