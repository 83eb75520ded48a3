"""A typed client for the emulator's /_emulator/ endpoints: audit, faults, tokens, reset."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx


class EmulatorControl:
    """What tests and operators ask a running emulator (never rate-limited or faulted)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, f"{self.url}/_emulator/{path}", json=body, timeout=self._timeout
        )
        response.raise_for_status()
        return response.json()

    def writes(self, since: int = 0) -> list[dict[str, Any]]:
        """Every applied write, oldest first: record id, method, time, request id, sha256."""
        result: list[dict[str, Any]] = self._call("GET", f"writes?since={since}")["writes"]
        return result

    def counters(self) -> dict[str, int]:
        """requests, status_<code>, rate_limited, injected_errors, dropped_*, slowed, ..."""
        result: dict[str, int] = self._call("GET", "counters")
        return result

    def biblios(self) -> list[dict[str, Any]]:
        """Every stored biblio: biblio_id, payload_sha256, control_number(_source)."""
        result: list[dict[str, Any]] = self._call("GET", "biblios")["biblios"]
        return result

    def creates_per_control_number(self) -> Counter[str]:
        """How many POSTs created each stored record (1 everywhere means exactly once)."""
        stored = {b["biblio_id"]: b["control_number"] for b in self.biblios()}
        return Counter(
            stored.get(w["record_id"], f"deleted:{w['record_id']}")
            for w in self.writes()
            if w["method"] == "POST" and w["resource"] == "biblio"
        )

    def set_faults(self, **profile: Any) -> dict[str, Any]:
        """Replace the fault profile (FaultProfile fields; `rate_limit`/`burst` too)."""
        result: dict[str, Any] = self._call("POST", "faults", profile)
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def expire_tokens(self) -> int:
        return int(self._call("POST", "tokens/expire")["expired"])

    def reset(self) -> None:
        """Empty catalog, write log and counters; faults back to none."""
        self.clear_faults()
        self._call("POST", "reset")
