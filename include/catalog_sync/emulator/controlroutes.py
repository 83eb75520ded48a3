"""The /_emulator/ control and audit routes both emulator modes share (never rate-limited or
faulted): health, identity, the write log and counters, faults and the rate limit, token
expiry and reset. Paths and bodies are the same in the Koha and FOLIO modes, so one
EmulatorControl drives either; each mode adds its own few routes beside these."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from catalog_sync.emulator.faults import FaultInjector, FaultProfile, TokenBucket


class _Config(Protocol):
    @property
    def identity(self) -> str | None: ...
    @property
    def rate_limit(self) -> float | None: ...
    @property
    def burst(self) -> float | None: ...


class _WriteLog(Protocol):
    def writes(self, since: int = 0) -> list[dict[str, Any]]: ...
    def write_total(self) -> int: ...
    def write_counts(self) -> dict[str, int]: ...


class ControlledState(Protocol):
    """What the routes need of an emulator's state (EmulatorState, FolioState)."""

    counters: Counter[str]
    bucket: TokenBucket | None
    faults: FaultInjector

    @property
    def config(self) -> _Config: ...
    @property
    def store(self) -> _WriteLog: ...
    def set_rate_limit(self, rate: float | None, burst: float | None = None) -> None: ...
    def expire_tokens(self) -> int: ...


def register_control(
    app: FastAPI, state: ControlledState, *, flavour: str, reset: Callable[[], None]
) -> None:
    """Add the shared routes; `reset` empties the mode's catalog (its counters are cleared here)."""
    store = state.store

    def counters() -> dict[str, int]:
        result = dict(state.counters)
        result["writes"] = store.write_total()
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
        return {"status": "ok", "flavour": flavour}

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
        """Replace the fault profile; `rate_limit`/`burst` keys (null = off) change the bucket."""
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

    @app.post("/_emulator/reset")
    async def reset_all() -> dict[str, str]:
        reset()
        state.counters.clear()
        return {"status": "reset"}


__all__ = ["ControlledState", "register_control"]
