"""Land downloads safely: temporary name, sha256 while writing, size check, then rename."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Protocol

from catalog_sync.delivery.errors import (
    DeliveryIntegrityError,
    DeliveryUnpackError,
    DeliveryUnpackLimitError,
    DeliveryUnsafeNameError,
)
from catalog_sync.delivery.safety import UnpackLimits, name_problem

_CHUNK = 1 << 20


def partial_path(directory: Path, name: str) -> Path:
    """A hidden, unique temporary name: never matched by a vendor pattern, never reused."""
    return directory / f".{name}.{uuid.uuid4().hex[:8]}.partial"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def land_chunks(
    chunks: Iterable[bytes],
    landing_dir: Path,
    name: str,
    expected_size: int | None,
    accept: Callable[[str], bool] | None = None,
) -> tuple[Path | None, str, int]:
    """Write `chunks` under a temporary name, verify the size, rename to landing/<sha256>/<name>.

    Returns (path, sha256, size); path is None when `accept(sha256)` declines the content
    (e.g. already loaded). On any error the temporary file is removed, so a broken transfer
    never leaves a file that looks whole.
    """
    landing_dir.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(landing_dir, name)
    digest = hashlib.sha256()
    size = 0
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if expected_size is not None and size != expected_size:
            raise DeliveryIntegrityError(
                f"{name}: received {size} bytes, the server announced {expected_size}"
            )
        sha = digest.hexdigest()
        if accept is not None and not accept(sha):
            return None, sha, size
        dest = landing_dir / sha / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        return dest, sha, size
    finally:
        tmp.unlink(missing_ok=True)


def _read_chunks(stream: _Readable) -> Iterable[bytes]:
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return
        yield chunk


class _Budget:
    """Bytes left for one delivery's members together; raises once they are used up."""

    def __init__(self, delivery: str, limits: UnpackLimits) -> None:
        self.delivery = delivery
        self.limits = limits
        self.used = 0

    def metered(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.used += len(chunk)
            self.check(self.used)
            yield chunk

    def check(self, size: int) -> None:
        if size > self.limits.max_bytes:
            raise DeliveryUnpackLimitError(
                f"{self.delivery}: unpacks to more than {self.limits.max_bytes} bytes "
                "(max_unpacked_bytes of the vendor's delivery config); refused"
            )


def unpack(
    path: Path, landing_dir: Path, limits: UnpackLimits | None = None
) -> list[tuple[str, Path, str, int]]:
    """Members of a .gz or .zip delivery, each landed like a download: (name, path, sha, size).

    Zip member paths are flattened to their base name, which must then be a plain, safe name;
    directories are skipped. Past `limits` (all members together) DeliveryUnpackLimitError is
    raised, counted on the bytes actually decompressed since an archive's stated sizes can lie;
    a corrupt archive raises DeliveryUnpackError. Either way no member stays landed.
    """
    budget = _Budget(path.name, limits or UnpackLimits())
    out: list[tuple[str, Path, str, int]] = []
    try:
        if path.suffix.lower() == ".gz":
            name = path.name[: -len(".gz")] or "unpacked"
            with gzip.open(path, "rb") as member:
                chunks = budget.metered(_read_chunks(member))
                out.append(_landed(name, land_chunks(chunks, landing_dir, name, None)))
        elif path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                infos = [i for i in archive.infolist() if not i.is_dir()]
                if len(infos) > budget.limits.max_members:
                    raise DeliveryUnpackLimitError(
                        f"{path.name}: holds {len(infos)} files, more than "
                        f"{budget.limits.max_members} members (max_unpacked_members of the "
                        "vendor's delivery config); refused"
                    )
                budget.check(sum(i.file_size for i in infos))  # before decompressing anything
                for info in infos:
                    name = PurePosixPath(info.filename.replace("\\", "/")).name
                    problem = name_problem(name)
                    if problem:
                        raise DeliveryUnsafeNameError(
                            f"{path.name}: member {info.filename!r} has an {problem}"
                        )
                    with archive.open(info) as member:
                        chunks = budget.metered(_read_chunks(member))
                        out.append(
                            _landed(name, land_chunks(chunks, landing_dir, name, info.file_size))
                        )
    except BaseException as exc:
        for _name, landed, _sha, _size in out:
            landed.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the folder still holds other files
                landed.parent.rmdir()
        if isinstance(exc, OSError | EOFError | zipfile.BadZipFile | DeliveryIntegrityError):
            raise DeliveryUnpackError(f"{path.name}: cannot unpack ({exc})") from exc
        raise
    return out


def _landed(name: str, landed: tuple[Path | None, str, int]) -> tuple[str, Path, str, int]:
    path, sha, size = landed
    assert path is not None  # no `accept` filter while unpacking
    return name, path, sha, size


def is_packed(name: str) -> bool:
    return name.lower().endswith((".gz", ".zip"))


def copy_verified(src: Path, dest: Path) -> None:
    """Copy under a temporary name and rename, so `dest` is complete whenever it exists."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(dest.parent, dest.name)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
