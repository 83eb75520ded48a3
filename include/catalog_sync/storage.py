"""The run storage all workers share (a UPath root), and each worker's local copy of what it uses.

Workers share no local disk. Landing files, staged change sets, reject files, diffs, reports,
manifests and audit files live under one storage root (the local CATALOG_SYNC_HOME by default;
any fsspec URL, such as sftp://host/srv/catalog-sync, when distributed) at relative keys laid
out like the local folder:

    landing/<vendor>/<sha256>/<name>          immutable; copies are checked against the sha256
    staging/<vendor>/<run>/<chunk>.jsonl
    rejects/<vendor>/<run>/<chunk>.rej        (+ .rej.index.jsonl)
    reports/<vendor>/<run>/report.{json,txt}, manifest.json, diffs/<chunk>.jsonl
    audit/<vendor>/<run>/<task>.jsonl         (shared storage: one file per task attempt)

A task works on local files under its worker's folder at the same relative paths: `fetch(key)`
downloads a stored object there, `publish(path)` uploads a finished file under a temporary key
and renames it into place, so no reader ever sees half a file. With the default storage (the
worker's own folder) every one of these is a no-op and nothing is copied.

    storage = SharedStorage.at(UPath("sftp://files.example.org/srv/catalog-sync"), home)
    local = storage.landing_copy(ref.file_path, ref.verify_sha256)    # cached, verified
    key = storage.publish(home / "staging" / "demo" / run / "c1.jsonl", move=True)
"""

from __future__ import annotations

import logging
import os
import posixpath
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from catalog_sync.marc.landing import sha256_of

log = logging.getLogger(__name__)


class StorageRoot(Protocol):
    """What SharedStorage needs of a UPath (universal_pathlib, or Airflow's ObjectStoragePath)."""

    @property
    def fs(self) -> Any: ...

    @property
    def path(self) -> str: ...


class StorageError(RuntimeError):
    """The run storage cannot give or take a file."""

    reason = "storage_error"


class StoredObjectMissing(StorageError):
    reason = "storage_object_missing"


class LandingIntegrityError(StorageError):
    """A landing file's copy does not hash to the sha256 it was landed under."""

    reason = "landing_sha256_mismatch"


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    modified: datetime | None


def check_key(key: str) -> str:
    """`key` as a clean relative POSIX path; anything that could leave the root is refused."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or str(path) == ".":
        raise StorageError(f"not a run storage key: {key!r}")
    return path.as_posix()


def _is_local(fs: Any) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _modified(info: dict[str, Any]) -> datetime | None:
    """A listing entry's modification time, whatever the filesystem calls it."""
    from datetime import UTC

    for name in ("mtime", "LastModified", "last_modified", "updated", "modified"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and value:
            with suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


@dataclass(frozen=True)
class SharedStorage:
    """Keys in the run storage, and where this worker keeps its local copies of them.

    `fs` None means the storage root is the worker folder itself (one machine): nothing is
    copied, local paths are the stored objects.
    """

    work: Path
    fs: Any = None
    base: str = ""
    url: str = ""

    @classmethod
    def local(cls, work: Path | str) -> SharedStorage:
        return cls(work=Path(work))

    @classmethod
    def at(cls, root: StorageRoot, work: Path | str, fs: Any = None) -> SharedStorage:
        """Storage at `root` (its own filesystem unless `fs` is given) for worker folder `work`."""
        fs = fs if fs is not None else root.fs
        base = root.path.rstrip("/") or "/"
        work = Path(work)
        if _is_local(fs) and Path(base).resolve() == work.resolve():
            return cls.local(work)
        return cls(work=work, fs=fs, base=base, url=str(root))

    @property
    def shared(self) -> bool:
        """True when stored objects are copied between the storage and this worker's folder."""
        return self.fs is not None

    def key(self, path: Path | str) -> str:
        """The key of a file under the worker folder (a relative key is returned as it is)."""
        p = Path(path)
        if not p.is_absolute():
            return check_key(p.as_posix())
        try:
            relative = p.relative_to(self.work)
        except ValueError:
            try:
                relative = p.resolve().relative_to(self.work.resolve())
            except ValueError:
                raise StorageError(
                    f"{p} is outside the worker folder {self.work}: it cannot be shared"
                ) from None
        return check_key(relative.as_posix())

    def local_path(self, key: str) -> Path:
        """Where this worker keeps `key`; an absolute local path (library use) is kept as is."""
        if Path(key).is_absolute():
            return Path(key)
        return self.work / check_key(key)

    def location(self, key: str) -> str:
        """Where an operator finds `key`: a URL in the shared storage, else a local path."""
        if not self.shared:
            return str(self.local_path(key))
        return f"{self.url.rstrip('/')}/{check_key(key)}"

    def _remote(self, key: str) -> str:
        return posixpath.join(self.base, check_key(key))

    def publish(self, path: Path | str, *, move: bool = False) -> str:
        """Put a finished local file into the storage under its key, atomically; returns the key.

        The upload goes to a unique temporary key that is then renamed into place (SFTP
        posix-rename, a local rename; an object store's put is whole by itself), so readers
        never see a partial object. With `move`, the local copy is removed afterwards.
        """
        key = self.key(path)
        if not self.shared:
            return key
        src = self.local_path(key)
        dest = self._remote(key)
        tmp = f"{dest}.{uuid.uuid4().hex[:12]}.partial"
        self.fs.makedirs(posixpath.dirname(dest), exist_ok=True)
        try:
            self.fs.put_file(str(src), tmp)
            self.fs.mv(tmp, dest)
        except BaseException:
            with suppress(OSError):
                self.fs.rm_file(tmp)
            raise
        if move:
            src.unlink(missing_ok=True)
        return key

    def publish_text(self, key: str, text: str) -> str:
        """Write `text` at `key` and publish it (a local copy stays only when unshared)."""
        path = self.local_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        return self.publish(path, move=True)

    def fetch(self, key: str) -> Path:
        """A local copy of `key`, downloaded when the storage is shared."""
        local = self.local_path(key)
        if self.shared and not Path(key).is_absolute():
            self._download(key, local)
        elif not local.is_file():
            raise StoredObjectMissing(f"{local} does not exist")
        return local

    def landing_copy(self, key: str, sha256: str) -> Path:
        """A local copy of an immutable landing file, verified against its sha256.

        Shared storage: the copy is downloaded once per worker into its landing folder (content
        addressed: the key holds the hash) and reused by every later task on that worker; a
        copy that no longer matches is discarded and fetched again, and a download that does
        not match raises LandingIntegrityError. Unshared, the landing file is used in place.
        """
        local = self.local_path(key)
        if not self.shared or Path(key).is_absolute():
            if not local.is_file():
                raise StoredObjectMissing(f"landing file {local} does not exist")
            return local
        if local.is_file():
            found = sha256_of(local)
            if found == sha256:
                return local
            log.warning(
                "refusing the cached copy of %s: its sha256 is %s, not %s; fetching it again",
                key, found, sha256,
            )  # fmt: skip
            local.unlink(missing_ok=True)
        self._download(key, local, sha256)
        return local

    def _download(self, key: str, local: Path, sha256: str | None = None) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.{uuid.uuid4().hex[:12]}.partial")
        try:
            try:
                self.fs.get_file(self._remote(key), str(tmp))
            except FileNotFoundError as exc:
                raise StoredObjectMissing(
                    f"{self.location(key)} is not in the run storage"
                ) from exc
            if sha256 is not None and (found := sha256_of(tmp)) != sha256:
                raise LandingIntegrityError(
                    f"landing file {self.location(key)} does not match its sha256: expected "
                    f"{sha256}, read {found}. Landing files are immutable: it was changed or "
                    "damaged in the run storage; land the delivery again (force) to reload it"
                )
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        if not self.shared:
            return self.local_path(key).exists()
        return bool(self.fs.exists(self._remote(key)))

    def read_text(self, key: str) -> str:
        """A small stored text (a report), read without keeping a local copy."""
        if not self.shared:
            return self.local_path(key).read_text(encoding="utf-8")
        try:
            data: bytes = self.fs.cat_file(self._remote(key))
        except FileNotFoundError as exc:
            raise StoredObjectMissing(f"{self.location(key)} is not in the run storage") from exc
        return data.decode("utf-8")

    def files(self, prefix: str) -> list[StoredFile]:
        """Every stored file under `prefix` (recursively), sorted by key."""
        if not self.shared:
            root = self.local_path(prefix)
            if not root.is_dir():
                return []
            return [
                StoredFile(self.key(p), p.lstat().st_size, _modified({"mtime": p.lstat().st_mtime}))
                for p in sorted(root.rglob("*"))
                if p.is_file() or p.is_symlink()
            ]
        remote = self._remote(prefix)
        if not self.fs.isdir(remote):
            return []
        found: dict[str, dict[str, Any]] = self.fs.find(remote, detail=True)
        base = self.base.rstrip("/") + "/"
        out = []
        for path, info in sorted(found.items()):
            name = self.fs._strip_protocol(path)
            key = name[len(base) :] if name.startswith(base) else name.lstrip("/")
            out.append(StoredFile(key, int(info.get("size") or 0), _modified(info)))
        return out

    def remove(self, key: str) -> None:
        if not self.shared:
            self.local_path(key).unlink(missing_ok=True)
            return
        with suppress(FileNotFoundError):
            self.fs.rm_file(self._remote(key))

    def purge(self, prefix: str, older_than: timedelta, now: datetime) -> list[str]:
        """Remove stored files under `prefix` last modified before `now - older_than`.

        Used for shared storage (the local folder has retention.purge); folders left empty are
        removed too, never `prefix` itself. Returns the removed keys.
        """
        cutoff = now - older_than
        removed = []
        for f in self.files(prefix):
            if f.modified is not None and f.modified < cutoff:
                self.remove(f.key)
                removed.append(f.key)
        if self.shared:
            self._remove_empty_dirs(prefix)
        return removed

    def _remove_empty_dirs(self, prefix: str) -> None:
        top = self._remote(prefix)
        if not self.fs.isdir(top):
            return
        dirs = [d for d in self.fs.find(top, withdirs=True) if self.fs.isdir(d)]
        for d in sorted(dirs, key=len, reverse=True):
            if d.rstrip("/") != top.rstrip("/") and not self.fs.ls(d, detail=False):
                with suppress(OSError):
                    # sshfs's sync rmdir is fsspec's no-op default; its rm removes an empty
                    # folder. The local filesystem's rm refuses folders, its rmdir works.
                    self.fs.rmdir(d) if _is_local(self.fs) else self.fs.rm(d)
