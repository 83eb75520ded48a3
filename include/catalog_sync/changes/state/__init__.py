"""The state store: files loaded, what was last applied per record, pre-images, the ledger.

`StateStore` runs each step (catalog_sync.changes.state.ops) as a blocking call; async code uses
`StateCalls`, which runs them off the event loop and commits concurrent records' steps together.
"""

from __future__ import annotations

from catalog_sync.changes.state import ops
from catalog_sync.changes.state.engine import (
    STATE_URL_VARIABLE,
    Contention,
    StateStoreContended,
    migrate,
)
from catalog_sync.changes.state.offloop import StateCalls
from catalog_sync.changes.state.ops import Op
from catalog_sync.changes.state.schema import (
    AppliedRecord,
    LedgerEntry,
    RunChange,
    catalog_records,
    commit_ledger,
    idempotency_key,
    loaded_files,
    metadata,
    run_changes,
)
from catalog_sync.changes.state.store import StateStore

__all__ = [
    "STATE_URL_VARIABLE",
    "AppliedRecord",
    "Contention",
    "LedgerEntry",
    "Op",
    "RunChange",
    "StateCalls",
    "StateStore",
    "StateStoreContended",
    "catalog_records",
    "commit_ledger",
    "idempotency_key",
    "loaded_files",
    "metadata",
    "migrate",
    "ops",
    "run_changes",
]
