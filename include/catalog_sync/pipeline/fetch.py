"""fetch: find new deliveries in the vendor's inbox and copy them, hashed, into the landing area."""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from catalog_sync.bibframe import check_rdfxml, convert_bibframe
from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig
from catalog_sync.delivery.errors import DeliveryUnsafeNameError
from catalog_sync.delivery.models import DeliveryReport
from catalog_sync.delivery.safety import name_problem
from catalog_sync.errors import DeliveryFormatError, InboxMissingError, RunInputError
from catalog_sync.marc.errors import CatalogSyncInputError
from catalog_sync.marc.landing import sha256_of
from catalog_sync.marc.sniff import detect_format
from catalog_sync.models import LandingFile, RecordFormat
from catalog_sync.paths import RuntimeLayout
from catalog_sync.storage import SharedStorage

log = logging.getLogger(__name__)


# Reason code of an inbox entry that is a link to a file elsewhere on the host.
OUTSIDE_INBOX = "outside_inbox"


def _delivery_name(vendor: VendorConfig, name: str) -> bool:
    """Whether an inbox file of this name is the vendor's to load (source.patterns)."""
    return any(fnmatch.fnmatch(name, pat) for pat in vendor.source.patterns)


def list_inbox(vendor: VendorConfig, layout: RuntimeLayout) -> list[Path]:
    inbox = vendor.inbox_path(layout.root)
    if not inbox.is_dir():
        raise InboxMissingError(
            f"vendor {vendor.name!r}: inbox folder {inbox} does not exist. Create it and put the "
            f"delivery there, or correct source.inbox for {vendor.name!r} in vendors.yaml."
        )
    return sorted(p for p in inbox.iterdir() if p.is_file() and _delivery_name(vendor, p.name))


def land(path: Path, sha256: str, landing_dir: Path) -> Path:
    """Copy into <landing>/<sha256>/<name>, renamed into place only when complete (idempotent)."""
    dest_dir = landing_dir / sha256
    dest = dest_dir / path.name
    if dest.exists() and dest.stat().st_size == path.stat().st_size:
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".{path.name}.partial"
    shutil.copyfile(path, tmp)
    os.replace(tmp, dest)
    return dest


def _format_of(path: Path, vendor: VendorConfig) -> RecordFormat:
    """The delivery's format from its content; a vendor's declared format must agree with it."""
    found = detect_format(path)
    if vendor.declared_format and vendor.declared_format != found:
        raise DeliveryFormatError(
            f"vendor {vendor.name!r} declares {vendor.declared_format} deliveries, but "
            f"{path.name} contains {found}; fix the file or declared_format in vendors.yaml"
        )
    return found


def _check_readable(path: Path, vendor: VendorConfig) -> None:
    """Raise an input error for an empty, non-MARC or malformed RDF/XML file (reads it whole)."""
    if _format_of(path, vendor) == "bibframe":
        check_rdfxml(path)


def _check_landed(paths: list[Path], vendor: VendorConfig) -> None:
    """A remote transport lands files before their content can be read: check them all before
    any is converted, and take every one of them back out of landing if one is unreadable (the
    archive keeps the delivery as received), so the run ends with nothing landed.
    """
    try:
        for path in paths:
            _check_readable(path, vendor)
    except (CatalogSyncInputError, RunInputError):
        for path in paths:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # landing/<sha256>/, if nothing else is in it
        raise


# fetch_sftp / fetch_https with the vendor's credentials bound: (landing, archive, already_loaded).
RemoteFetch = Callable[[Path, Path, Callable[[str, str], bool]], DeliveryReport]


class FetchResult(BaseModel):
    """What fetch found: files to load, and deliveries it flagged instead (names only)."""

    files: list[LandingFile] = Field(default_factory=list)
    empty: list[str] = Field(default_factory=list)
    pending: list[str] = Field(default_factory=list)
    # Files refused (unsafe name; remote: another origin, past the unpack bounds): name -> why.
    refused: dict[str, str] = Field(default_factory=dict)
    # The same files' reason codes (unsafe_name, off_origin, unpack_limit): name -> code.
    refused_codes: dict[str, str] = Field(default_factory=dict)


def landing_file(vendor: VendorConfig, name: str, path: Path, sha: str) -> LandingFile:
    """Describe a landed file; a BIBFRAME delivery is converted to MARCXML beside it."""
    fmt = _format_of(path, vendor)
    if fmt != "bibframe":
        return LandingFile(
            vendor=vendor.name, name=name, path=str(path), sha256=sha,
            size=path.stat().st_size, format=fmt,
        )  # fmt: skip
    marcxml = path.with_name(f"{path.name}.marcxml")
    report = convert_bibframe(path, marcxml)
    log.info(
        "converted BIBFRAME %s: %d instances, %d converted, %d rejected %s",
        name, report.instances, report.converted, report.rejected, report.reasons,
    )  # fmt: skip
    return LandingFile(
        vendor=vendor.name, name=name, path=str(marcxml), sha256=sha,
        size=marcxml.stat().st_size, format="marcxml", converted_from="bibframe",
        conversion_rejected=report.rejected, conversion_reasons=dict(report.reasons),
    )  # fmt: skip


def fetch_deliveries(
    vendor: VendorConfig,
    layout: RuntimeLayout,
    state: StateStore,
    *,
    force: bool = False,
    remote: RemoteFetch | None = None,
) -> FetchResult:
    """New deliveries of the vendor, landed; files already loaded are skipped unless forced.

    A local inbox is checked whole before anything is landed, so an unreadable delivery fails
    the run with nothing half-written. A remote source (SFTP / HTTPS) lands through `remote`,
    which waits for complete files, unpacks .gz/.zip and archives each delivery.
    """
    if vendor.source.kind != "local":
        if remote is None:
            raise RunInputError(
                f"vendor {vendor.name!r}: no transport for its {vendor.source.kind} source"
            )
        report = remote(
            layout.landing / vendor.name,
            layout.root / "archive" / vendor.name,
            lambda _name, sha: not force and state.is_loaded(vendor.name, sha),
        )
        _check_landed([f.path for f in report.fetched], vendor)
        files = [landing_file(vendor, f.name, f.path, f.sha256) for f in report.fetched]
        return FetchResult(
            files=files,
            empty=report.empty,
            pending=report.pending,
            refused=report.refused,
            refused_codes=report.refused_codes,
        )

    found: list[tuple[Path, str]] = []
    refused: dict[str, str] = {}
    codes: dict[str, str] = {}
    inbox = vendor.inbox_path(layout.root).resolve()
    for path in list_inbox(vendor, layout):
        # The vendor chose this name as surely as one in a remote listing, and it becomes a
        # landing path and a report line: the rule the SFTP/HTTPS transports apply holds here.
        if problem := name_problem(path.name):
            refused[_shown(path.name)] = problem
            codes[_shown(path.name)] = DeliveryUnsafeNameError.reason
            log.warning("refused inbox file %r: %s", path.name, problem)
            continue
        # A link a vendor could plant (SFTP has a SYMLINK request) must not land a file from
        # elsewhere on this host; links inside the inbox, an operator's own, still work.
        if not path.resolve().is_relative_to(inbox):
            refused[_shown(path.name)] = "a link to a file outside the inbox"
            codes[_shown(path.name)] = OUTSIDE_INBOX
            log.warning("refused inbox file %r: it links outside the inbox", path.name)
            continue
        sha = sha256_of(path)
        if not force and state.is_loaded(vendor.name, sha):
            log.info("skipping %s: already loaded (sha256 %s)", path.name, sha)
            continue
        found.append((path, sha))
    for path, _ in found:
        _check_readable(path, vendor)  # nothing lands if one file is unreadable
    files = [
        landing_file(vendor, p.name, land(p, sha, layout.landing / vendor.name), sha)
        for p, sha in found
    ]
    for f in files:
        log.info("landed %s (%s, %d bytes, sha256 %s)", f.name, f.format, f.size, f.sha256)
    return FetchResult(files=files, refused=refused, refused_codes=codes)


def _shown(name: str) -> str:
    """A local file name as text that XCom and reports can carry: bytes that are not UTF-8
    (a name written in Latin-1, say) become backslash escapes instead of lone surrogates."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def sync_inbox(
    vendor: VendorConfig, layout: RuntimeLayout, storage: SharedStorage
) -> dict[str, str]:
    """Shared storage: mirror the vendor's inbox (a relative one) from the storage to this worker.

    Workers share no disk, so a local-source vendor's deliveries are laid in the run storage
    (inbox/<vendor>); an absolute inbox stays a folder on the worker that runs fetch. A name
    the inbox rule refuses (delivery.safety.name_problem) is not copied onto this worker at
    all: it is returned (shown name -> why) for the fetch to report, as a local inbox does.
    """
    if not storage.shared or vendor.source.kind != "local":
        return {}
    local = vendor.inbox_path(layout.root)
    if Path(vendor.source.inbox).is_absolute():
        return {}
    prefix = storage.key(local)
    listed = {
        PurePosixPath(f.key).name: f
        for f in storage.files(prefix)
        if PurePosixPath(f.key).parent.as_posix() == prefix  # the inbox itself, not sub-folders
    }
    unsafe = {name: problem for name in listed if (problem := name_problem(name))}
    refused = {_shown(n): why for n, why in unsafe.items() if _delivery_name(vendor, n)}
    stored = {name: f for name, f in listed.items() if name not in unsafe}
    if not listed and not storage.exists(prefix):
        raise InboxMissingError(
            f"vendor {vendor.name!r}: inbox {storage.location(prefix)} does not exist in the run "
            f"storage. Create it and put the delivery there, or correct source.inbox for "
            f"{vendor.name!r} in vendors.yaml."
        )
    local.mkdir(parents=True, exist_ok=True)
    for name, f in stored.items():
        mine = local / name
        if (
            mine.is_file()
            and mine.stat().st_size == f.size
            and f.modified is not None
            and (mine.stat().st_mtime >= f.modified.timestamp())
        ):
            continue  # this worker already holds this delivery
        storage.fetch(f.key)
    for mine in local.iterdir():
        if mine.is_file() and mine.name not in stored:
            mine.unlink()  # withdrawn from the shared inbox: not this worker's to load
    for name, problem in refused.items():
        log.warning("refused inbox file %r in the run storage: %s", name, problem)
    return refused


def publish_landed(
    result: FetchResult, vendor: VendorConfig, layout: RuntimeLayout, storage: SharedStorage
) -> FetchResult:
    """Put landed files (and archived remote deliveries) into the run storage; paths become keys.

    The landed copies stay on this worker as its verified cache of them.
    """
    files = []
    for f in result.files:
        path = Path(f.path)
        content_sha = sha256_of(path) if f.converted_from else ""
        if f.converted_from and (original := path.with_name(f.name)).is_file():
            storage.publish(original)  # the delivery as received, beside its conversion
        key = storage.publish(path)
        files.append(f.model_copy(update={"path": key, "content_sha256": content_sha}))
    archive = layout.root / "archive" / vendor.name
    if storage.shared and archive.is_dir():
        for p in sorted(archive.iterdir()):
            if p.is_file():
                storage.publish(p, move=True)
    return result.model_copy(update={"files": files})


def fetch_to_storage(
    vendor: VendorConfig,
    layout: RuntimeLayout,
    storage: SharedStorage,
    state: StateStore,
    *,
    force: bool = False,
    remote: RemoteFetch | None = None,
) -> FetchResult:
    """fetch_deliveries through the run storage: inbox from it, landed files into it."""
    refused = sync_inbox(vendor, layout, storage)
    result = fetch_deliveries(vendor, layout, state, force=force, remote=remote)
    if refused:
        code = DeliveryUnsafeNameError.reason
        result = result.model_copy(
            update={
                "refused": {**result.refused, **refused},
                "refused_codes": {**result.refused_codes, **dict.fromkeys(refused, code)},
            }
        )
    return publish_landed(result, vendor, layout, storage)
