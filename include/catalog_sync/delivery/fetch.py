"""The fetch flow shared by SFTP and HTTPS: select, wait for completeness, land, unpack, archive."""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from catalog_sync.delivery.archive import archive_delivery
from catalog_sync.delivery.errors import (
    DeliveryOffOriginError,
    DeliveryRefusedError,
    DeliveryTransientError,
    DeliveryUnavailableError,
    DeliveryUnsafeNameError,
)
from catalog_sync.delivery.landing import is_packed, land_chunks, unpack
from catalog_sync.delivery.models import DeliveryReport, DeliverySource, FetchedFile
from catalog_sync.delivery.safety import UnpackLimits, name_problem

log = logging.getLogger(__name__)

AlreadyLoaded = Callable[[str, str], bool]


@dataclass(frozen=True)
class RemoteEntry:
    """A file as a remote listing shows it (size and mtime may be unknown over HTTPS)."""

    name: str
    size: int | None
    mtime: float | None
    location: str  # remote path or URL
    refused: str | None = None  # why the transport will not fetch it (e.g. another origin)


class RemoteFolder(Protocol):
    """What the flow needs from a transport; errors are DeliveryError subclasses."""

    label: str

    def entries(self) -> list[RemoteEntry]: ...

    def open(self, entry: RemoteEntry) -> tuple[Iterator[bytes], int | None]: ...

    def reconnect(self) -> None: ...


@dataclass(frozen=True)
class FetchPolicy:
    """The hygiene rules of one fetch (DeliverySource's fields, in seconds)."""

    patterns: Sequence[str] = ("*",)
    lookback_seconds: float | None = None
    stable_seconds: float = 30.0
    max_looks: int = 3
    done_marker_suffix: str | None = None
    attempts: int = 3
    retry_wait_seconds: float = 5.0
    unpack_limits: UnpackLimits = field(default_factory=UnpackLimits)

    @classmethod
    def from_source(cls, source: DeliverySource) -> FetchPolicy:
        return cls(
            patterns=tuple(source.patterns),
            lookback_seconds=source.lookback_days * 86400 if source.lookback_days else None,
            stable_seconds=source.stable_seconds,
            max_looks=source.max_looks,
            done_marker_suffix=source.done_marker_suffix,
            attempts=source.attempts,
            retry_wait_seconds=source.retry_wait_seconds,
            unpack_limits=source.unpack_limits,
        )


class FetchOptions(TypedDict):
    """The keyword arguments of fetch_sftp / fetch_https that a DeliverySource configures."""

    patterns: list[str]
    lookback_seconds: float | None
    stable_seconds: float
    max_looks: int
    done_marker_suffix: str | None
    attempts: int
    retry_wait_seconds: float
    max_unpacked_bytes: int
    max_unpacked_members: int


def fetch_options(source: DeliverySource) -> FetchOptions:
    """`fetch_sftp(login, dir, ..., **fetch_options(source))`: the vendor's hygiene rules."""
    policy = FetchPolicy.from_source(source)
    return FetchOptions(
        patterns=list(policy.patterns),
        lookback_seconds=policy.lookback_seconds,
        stable_seconds=policy.stable_seconds,
        max_looks=policy.max_looks,
        done_marker_suffix=policy.done_marker_suffix,
        attempts=policy.attempts,
        retry_wait_seconds=policy.retry_wait_seconds,
        max_unpacked_bytes=policy.unpack_limits.max_bytes,
        max_unpacked_members=policy.unpack_limits.max_members,
    )


def retrying(policy: FetchPolicy, sleep: Callable[[float], None]) -> Retrying:
    """Bounded retries of transient errors only; auth and host-key errors pass straight up.

    Example::

        for attempt in retrying(policy, time.sleep):
            with attempt:
                folder.entries()
    """
    return Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_fixed(policy.retry_wait_seconds),
        retry=retry_if_exception_type(DeliveryTransientError),
        sleep=sleep,
        reraise=True,
    )


def fetch_from(
    folder: RemoteFolder,
    policy: FetchPolicy,
    *,
    landing_dir: Path,
    archive_dir: Path,
    already_loaded: AlreadyLoaded,
    sleep: Callable[[float], None] = time.sleep,
    now: float | None = None,
) -> DeliveryReport:
    """Fetch every complete, new delivery from `folder` into `landing_dir`."""
    report = DeliveryReport()
    ready = _complete_entries(folder, policy, report, sleep, time.time() if now is None else now)
    for entry in ready:
        if entry.size == 0:
            report.empty.append(entry.name)
            continue
        _fetch_one(folder, policy, entry, landing_dir, archive_dir, already_loaded, sleep, report)
    return report


def _listing(
    folder: RemoteFolder, policy: FetchPolicy, sleep: Callable[[float], None]
) -> list[RemoteEntry]:
    try:
        for attempt in retrying(policy, sleep):
            with attempt:
                return folder.entries()
    except DeliveryTransientError as exc:
        raise DeliveryUnavailableError(
            f"{folder.label}: listing failed after {policy.attempts} attempts ({exc})"
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover - Retrying re-raises or returns


def _complete_entries(
    folder: RemoteFolder,
    policy: FetchPolicy,
    report: DeliveryReport,
    sleep: Callable[[float], None],
    now: float,
) -> list[RemoteEntry]:
    """Files matching the patterns, within the lookback, and complete (marker or stable size)."""
    listing = _listing(folder, policy, sleep)
    names = {e.name for e in listing}
    marker = policy.done_marker_suffix
    candidates: list[RemoteEntry] = []
    for entry in sorted(listing, key=lambda e: e.name):
        if marker and entry.name.endswith(marker):
            continue
        if not any(fnmatch.fnmatch(entry.name, pat) for pat in policy.patterns):
            continue
        # A vendor's name becomes a path on this worker: only a plain base name may.
        if problem := name_problem(entry.name):
            _refuse(report, entry.name, problem, DeliveryUnsafeNameError.reason)
            continue
        if entry.refused:
            _refuse(report, entry.name, entry.refused, DeliveryOffOriginError.reason)
            continue
        lookback = policy.lookback_seconds
        if lookback and entry.mtime is not None and entry.mtime < now - lookback:
            report.too_old.append(entry.name)
            continue
        candidates.append(entry)
    if marker:
        ready = [e for e in candidates if e.name + marker in names]
        report.pending += [e.name for e in candidates if e.name + marker not in names]
        return ready
    # Size (and mtime) unchanged across two looks separated by stable_seconds = complete.
    ready, previous = [], {e.name: e for e in candidates}
    for _ in range(policy.max_looks - 1):
        if not previous:
            break
        sleep(policy.stable_seconds)
        current = {e.name: e for e in _listing(folder, policy, sleep) if e.name in previous}
        for name, entry in sorted(current.items()):
            before = previous[name]
            if (entry.size, entry.mtime) == (before.size, before.mtime):
                ready.append(entry)
        previous = {
            n: e
            for n, e in current.items()
            if (e.size, e.mtime) != (previous[n].size, previous[n].mtime)
        }
    report.pending += sorted(previous)
    return sorted(ready, key=lambda e: e.name)


def _fetch_one(
    folder: RemoteFolder,
    policy: FetchPolicy,
    entry: RemoteEntry,
    landing_dir: Path,
    archive_dir: Path,
    already_loaded: AlreadyLoaded,
    sleep: Callable[[float], None],
    report: DeliveryReport,
) -> None:
    tries = 0

    def download() -> tuple[Path | None, str, int]:
        nonlocal tries
        tries += 1
        if tries > 1:
            folder.reconnect()
        chunks, announced = folder.open(entry)
        expected = announced if announced is not None else entry.size
        return land_chunks(
            chunks,
            landing_dir,
            entry.name,
            expected,
            lambda sha: not already_loaded(entry.name, sha),
        )

    try:
        for attempt in retrying(policy, sleep):
            with attempt:
                path, sha, size = download()
    except DeliveryRefusedError as exc:  # e.g. redirected to another origin
        _refuse(report, entry.name, str(exc), exc.reason)
        return
    except DeliveryTransientError as exc:
        raise DeliveryUnavailableError(
            f"{folder.label}: {entry.name} could not be downloaded in {tries} attempts ({exc}); "
            "nothing was landed for it"
        ) from exc
    if tries > 1:
        report.attempts[entry.name] = tries
    if path is None:
        report.already_loaded.append(entry.name)
        return
    archived = archive_delivery(path, sha, entry.name, archive_dir)
    if not is_packed(entry.name):
        report.fetched.append(FetchedFile(entry.name, path, sha, size, entry.name, sha, archived))
        return
    try:
        members = unpack(path, landing_dir, policy.unpack_limits)
    except DeliveryRefusedError as exc:  # past the bounds: nothing of it stays landed
        _refuse(report, entry.name, str(exc), exc.reason)
        return
    finally:
        path.unlink()  # the packed delivery stays in the archive; only its members are landed
        _remove_empty_dir(path.parent)
    for name, member_path, member_sha, member_size in members:
        label = f"{entry.name}:{name}"
        if member_size == 0:
            report.empty.append(label)
        elif already_loaded(name, member_sha):
            report.already_loaded.append(label)
        else:
            report.fetched.append(
                FetchedFile(name, member_path, member_sha, member_size, entry.name, sha, archived)
            )
            continue
        member_path.unlink()
        _remove_empty_dir(member_path.parent)


def _refuse(report: DeliveryReport, name: str, reason: str, code: str) -> None:
    report.refused[name] = reason
    report.refused_codes[name] = code
    log.warning("refused remote file %r: %s", name, reason)


def _remove_empty_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # it still holds other files
        path.rmdir()
