"""Compliance cadence: when a vendor load may start (cron, maintenance window, blackouts, gap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]

from catalog_sync.config import VendorConfig

# How far ahead a search looks before it declares that the rules leave no run at all.
HORIZON = timedelta(days=3 * 366)
MAX_CANDIDATES = 20_000


class CadenceError(ValueError):
    """A cadence that cannot be used; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MaintenanceWindow:
    """Local wall-clock span [start, end); an end before the start wraps past midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> MaintenanceWindow:
        """'01:00-05:00' -> MaintenanceWindow."""
        parts = text.split("-")
        if len(parts) != 2:
            raise CadenceError("window_invalid", f"maintenance window {text!r} is not HH:MM-HH:MM")
        try:
            start, end = (time.fromisoformat(p.strip()) for p in parts)
        except ValueError as exc:
            raise CadenceError(
                "window_invalid", f"maintenance window {text!r} is not HH:MM-HH:MM"
            ) from exc
        if start == end:
            raise CadenceError("window_invalid", f"maintenance window {text!r} is empty")
        return cls(start, end)

    def contains(self, wall: time) -> bool:
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class CadencePolicy:
    """A vendor's load cadence; every time is judged on the library's local wall clock."""

    cron: str
    timezone: str = "UTC"
    window: MaintenanceWindow | None = None
    business_days_only: bool = False
    blackout_dates: frozenset[date] = field(default_factory=frozenset)
    min_gap: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise CadenceError("cron_invalid", f"cron expression {self.cron!r} is not valid")
        if len(self.cron.split()) != 5:
            raise CadenceError("cron_invalid", f"cron {self.cron!r} must have five fields")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CadenceError("timezone_unknown", f"unknown time zone {self.timezone!r}") from exc
        if self.min_gap < timedelta(0):
            raise CadenceError("gap_negative", "minimum gap between runs cannot be negative")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def refusal(self, at: datetime) -> str | None:
        """Why a run may not start at this instant (a reason code), or None when it may."""
        local = at.astimezone(self.zone)
        if self.window is not None and not self.window.contains(local.time()):
            return "outside_window"
        if self.business_days_only and local.weekday() >= 5:
            return "not_business_day"
        if local.date() in self.blackout_dates:
            return "blackout_date"
        return None

    def _localize(self, wall: datetime) -> datetime:
        """Wall time -> aware instant. A repeated hour means its first pass (fold=0); a time
        skipped by spring-forward lands just as far after the gap (02:30 -> 03:30 EDT)."""
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def next_run(
        self, after: datetime, *, last_run: datetime | None = None, inclusive: bool = False
    ) -> datetime:
        """First allowed start (UTC) later than `after` (or at it when inclusive)."""
        if after.tzinfo is None:
            raise CadenceError("naive_datetime", "next_run needs a time-zone-aware datetime")
        # Plain datetimes from here on: a pendulum DateTime keeps its zone through replace().
        after_utc = datetime.fromtimestamp(after.timestamp(), UTC)
        earliest = after_utc
        if last_run is not None and self.min_gap:
            last_utc = datetime.fromtimestamp(last_run.timestamp(), UTC)
            earliest = max(earliest, last_utc + self.min_gap)
            inclusive = inclusive or earliest > after_utc
        # Walk the cron on naive local wall time so DST never shifts the schedule's hours; start
        # an hour back so a fall-back hour is not skipped, then compare instants in UTC.
        start_wall = (earliest.astimezone(self.zone) - timedelta(hours=1)).replace(tzinfo=None)
        walker = croniter(self.cron, start_wall - timedelta(microseconds=1))
        limit = earliest + HORIZON
        for _ in range(MAX_CANDIDATES):
            wall: datetime = walker.get_next(datetime)
            at = self._localize(wall)
            if at > limit:
                break
            if at < earliest or (at == earliest and not inclusive):
                continue
            if self.refusal(at) is None:
                return at
        raise CadenceError(
            "no_run_possible",
            f"no start allowed by {self.summary} within {HORIZON.days} days "
            f"of {after_utc:%Y-%m-%d}",
        )

    def runs_between(self, start: datetime, end: datetime, limit: int = 1000) -> list[datetime]:
        """Successive starts in [start, end), each honouring the minimum gap from the previous."""
        runs: list[datetime] = []
        at = start
        inclusive = True
        while len(runs) < limit:
            try:
                at = self.next_run(at, last_run=runs[-1] if runs else None, inclusive=inclusive)
            except CadenceError:
                break
            if at >= end:
                break
            runs.append(at)
            inclusive = False
        return runs

    @property
    def summary(self) -> str:
        """One line for the DAG list: cron, zone and the rules that narrow it."""
        parts = [f"{self.cron} ({self.timezone})"]
        if self.window is not None:
            parts.append(f"window {self.window}")
        if self.business_days_only:
            parts.append("business days")
        if self.blackout_dates:
            parts.append(f"{len(self.blackout_dates)} blackout dates")
        if self.min_gap:
            parts.append(f"gap ≥ {_duration(self.min_gap)}")
        return ", ".join(parts)

    def describe(self) -> str:
        """A sentence an operator reads in the UI."""
        text = f"Cron {self.cron!r} on {self.timezone} wall-clock time"
        if self.window is not None:
            text += f", starting only between {self.window.start:%H:%M} and "
            text += f"{self.window.end:%H:%M} local"
        if self.business_days_only:
            text += ", Monday to Friday only"
        if self.blackout_dates:
            shown = ", ".join(d.isoformat() for d in sorted(self.blackout_dates)[:5])
            more = len(self.blackout_dates) - 5
            text += f", never on {shown}" + (f" and {more} more" if more > 0 else "")
        if self.min_gap:
            text += f", at least {_duration(self.min_gap)} after the previous run"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "cron": self.cron,
            "timezone": self.timezone,
            "window": str(self.window) if self.window else None,
            "business_days_only": self.business_days_only,
            "blackout_dates": sorted(d.isoformat() for d in self.blackout_dates),
            "min_gap_seconds": self.min_gap.total_seconds(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CadencePolicy:
        window = data.get("window")
        return cls(
            cron=str(data["cron"]),
            timezone=str(data.get("timezone", "UTC")),
            window=MaintenanceWindow.parse(window) if window else None,
            business_days_only=bool(data.get("business_days_only", False)),
            blackout_dates=frozenset(date.fromisoformat(d) for d in data.get("blackout_dates", [])),
            min_gap=timedelta(seconds=float(data.get("min_gap_seconds", 0))),
        )


def _duration(gap: timedelta) -> str:
    hours, rest = divmod(int(gap.total_seconds()), 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours}h{minutes:02d}m"
    return f"{hours}h" if hours else f"{minutes}m"


def parse_gap(text: str | int | float) -> timedelta:
    """'20h', '90m', '1d', '1h30m' or a number of hours -> timedelta."""
    if isinstance(text, int | float):
        return timedelta(hours=text)
    total = timedelta(0)
    number = ""
    units = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
    for ch in text.strip().lower():
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += float(number) * units[ch]
            number = ""
        elif not ch.isspace():
            raise CadenceError("gap_invalid", f"minimum gap {text!r} is not like 20h or 1h30m")
    if number:
        raise CadenceError("gap_invalid", f"minimum gap {text!r} lacks a unit (d, h or m)")
    return total


def cadence_for(vendor: VendorConfig) -> CadencePolicy | None:
    """The vendor's cadence from vendors.yaml, or None for a vendor run only by hand."""
    if not vendor.schedule:
        return None
    return CadencePolicy(
        cron=vendor.schedule,
        timezone=vendor.timezone,
        window=MaintenanceWindow.parse(vendor.maintenance_window)
        if vendor.maintenance_window
        else None,
        business_days_only=vendor.business_days_only,
        blackout_dates=frozenset(vendor.blackout_dates),
        min_gap=parse_gap(vendor.min_gap) if vendor.min_gap else timedelta(0),
    )
