"""Fault profiles for the emulator: rate limit, injected errors, slow answers, drops, downtime."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Named profiles for the command line; key=value pairs after them override single settings.
NAMED_PROFILES: dict[str, dict[str, object]] = {
    "none": {},
    "flaky": {"error_rate": 0.2, "error_statuses": [503], "drop_rate": 0.05},
    "unstable": {"error_rate": 0.1, "error_statuses": [500, 502, 503], "slow_rate": 0.1},
    "slow": {"slow_rate": 1.0, "slow_seconds": 0.5},
    "down": {"down_for": 3600.0},
}


class FaultProfile(BaseModel):
    """What the emulator does wrong on purpose; every share is a probability per API request."""

    model_config = ConfigDict(extra="forbid")

    error_rate: float = Field(
        default=0.0, ge=0, le=1, description="share answered with an error status"
    )
    error_statuses: list[int] = Field(default_factory=lambda: [500, 502, 503])
    drop_rate: float = Field(
        default=0.0, ge=0, le=1, description="share whose connection is dropped"
    )
    drop_after_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="of the drops, share dropped after the request was applied",
    )
    slow_rate: float = Field(default=0.0, ge=0, le=1)
    slow_seconds: float = Field(default=0.0, ge=0, le=60)
    down_for: float = Field(
        default=0.0, ge=0, description="answer 503 maintenance for this many seconds"
    )
    down_mode: str = Field(default="503", pattern="^(503|drop)$")
    bad_answer_rate: float = Field(
        default=0.0, ge=0, le=1, description="share answered with something that is not Koha's"
    )
    # html: a proxy's 200 page, the request never reached Koha; empty / garbled: Koha did
    # the work, its answer arrives with no body / cut in half (an unparsable record).
    bad_answer: str = Field(default="html", pattern="^(html|empty|garbled)$")
    bad_answer_methods: list[str] = Field(default_factory=lambda: ["GET", "POST", "PUT", "DELETE"])
    seed: int | None = None


class FaultProfileError(ValueError):
    """A --faults value that cannot be read; the message says which part."""


def parse_fault_profile(text: str | None) -> FaultProfile:
    """`flaky`, `error_rate=0.2,error_statuses=500/503,drop_rate=0.05` or `flaky,slow_rate=0.1`."""
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part:
            if part not in NAMED_PROFILES:
                known = ", ".join(sorted(NAMED_PROFILES))
                raise FaultProfileError(f"unknown fault profile {part!r} (known: {known})")
            values.update(NAMED_PROFILES[part])
            continue
        key, raw = (s.strip() for s in part.split("=", 1))
        if key == "error_statuses":
            try:
                values[key] = [int(code) for code in raw.split("/") if code]
            except ValueError as exc:
                raise FaultProfileError(f"error_statuses must be like 500/503: {raw!r}") from exc
        elif key == "bad_answer_methods":
            values[key] = [m.upper() for m in raw.split("/") if m]
        else:
            values[key] = raw
    try:
        return FaultProfile.model_validate(values)
    except ValidationError as exc:
        raise FaultProfileError(f"bad --faults {text!r}: {exc.errors()[0]['msg']}") from exc


class Fault(StrEnum):
    DOWN = "down"
    ERROR = "error"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    SLOW = "slow"
    BAD_ANSWER = "bad_answer"


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request."""

    faults: frozenset[Fault]
    status: int | None = None
    delay: float = 0.0


class FaultInjector:
    """Draws the faults for each request from the active profile (seeded for repeatable runs)."""

    def __init__(self, profile: FaultProfile) -> None:
        self.profile = profile
        self._down_until = 0.0
        self._random = random.Random()
        self.apply(profile)

    def apply(self, profile: FaultProfile) -> None:
        self.profile = profile
        self._random = random.Random(profile.seed)
        self._down_until = time.monotonic() + profile.down_for if profile.down_for else 0.0

    @property
    def down_remaining(self) -> float:
        return max(0.0, self._down_until - time.monotonic())

    def decide(self, method: str = "GET") -> FaultDecision:
        p = self.profile
        if self.down_remaining > 0:
            return FaultDecision(frozenset({Fault.DOWN}))
        faults: set[Fault] = set()
        delay = 0.0
        if p.slow_rate and self._random.random() < p.slow_rate:
            faults.add(Fault.SLOW)
            delay = p.slow_seconds
        if p.error_rate and self._random.random() < p.error_rate and p.error_statuses:
            status = self._random.choice(p.error_statuses)
            return FaultDecision(frozenset({*faults, Fault.ERROR}), status=status, delay=delay)
        if p.drop_rate and self._random.random() < p.drop_rate:
            after = self._random.random() < p.drop_after_share
            faults.add(Fault.DROP_AFTER if after else Fault.DROP_BEFORE)
        elif (
            p.bad_answer_rate
            and method in p.bad_answer_methods
            and self._random.random() < p.bad_answer_rate
        ):
            faults.add(Fault.BAD_ANSWER)
        return FaultDecision(frozenset(faults), delay=delay)


class TokenBucket:
    """R tokens per second, holding at most `burst` (one second's worth by default)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def retry_after_header(wait: float) -> str:
    """HTTP's Retry-After is whole seconds; never advertise 0 for a refusal."""
    return str(max(1, math.ceil(wait)))
