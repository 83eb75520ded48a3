"""Where a run's files live: one runtime folder (CATALOG_SYNC_HOME), laid out the same way."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

# The repo checkout (include/catalog_sync/paths.py -> repo root); used for defaults only.
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = Path(os.environ.get("CATALOG_SYNC_CONFIG_DIR", REPO_ROOT / "include" / "config"))


def vendors_file() -> Path:
    """vendors.yaml, looked up at each call so a deployment or test can point elsewhere."""
    return Path(os.environ.get("CATALOG_SYNC_CONFIG_DIR", CONFIG_DIR)) / "vendors.yaml"


@dataclass(frozen=True)
class RuntimeLayout:
    """Every folder a run writes to, under one root so `make clean` can remove it whole."""

    root: Path

    @property
    def inbox_root(self) -> Path:
        return self.root / "inbox"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def run_dir(self) -> Path:
        """Pid files, sockets and logs of the services the project starts itself."""
        return self.root / "run"

    @property
    def state_url(self) -> str:
        return os.environ.get("CATALOG_SYNC_STATE_URL", f"sqlite:///{self.root / 'state.db'}")

    def inbox(self, vendor: str) -> Path:
        return self.inbox_root / vendor


def safe_name(run_id: str) -> str:
    """A run id as a folder name (Airflow run ids carry ':' and '+'), one folder per run id.

    Characters a folder name cannot carry become '_', and a leading '.' too (no '..', no
    hidden folder). Replacing loses information ('a:b' and 'a_b' would share a folder), so a
    replaced name gets '~' and a short hash of the run id itself: '~' is never kept from a run
    id, so a name without it is the run id unchanged and a name with it cannot be another id's.
    """
    name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in run_id)
    name = "_" + name[1:] if name.startswith(".") else name
    if name == run_id:
        return name
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{name}~{digest}"


def runtime_home() -> Path:
    """The runtime root: $CATALOG_SYNC_HOME, else var/ in the checkout."""
    return Path(os.environ.get("CATALOG_SYNC_HOME", REPO_ROOT / "var")).resolve()


def layout(root: Path | str | None = None) -> RuntimeLayout:
    return RuntimeLayout(Path(root).resolve() if root is not None else runtime_home())
