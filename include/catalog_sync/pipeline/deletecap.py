"""check_deletes: a run's staged deletes against the vendor's cap, before anything is written."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig
from catalog_sync.models import ChunkReport


@dataclass(frozen=True)
class DeleteCheck:
    """A run's deletes against the vendor's cap: over it, the run stops before committing."""

    deletes: int
    base: int
    cap: int

    @property
    def over_cap(self) -> bool:
        return self.deletes > self.cap

    def message(self, vendor: str) -> str:
        return (
            f"needs approval: this run would delete {self.deletes} record(s) of vendor "
            f"{vendor!r}, over its cap of {self.cap} ({self.base} records loaded); nothing was "
            "written. Check the delivery, then trigger the run again with param "
            "approve_deletes=true to apply the deletes."
        )


def check_delete_cap(
    chunks: Sequence[ChunkReport], vendor: VendorConfig, state: StateStore
) -> DeleteCheck:
    """Deletes staged by the run vs delete_cap_ratio of the vendor's records in the ILS."""
    deletes = sum(c.deletes for c in chunks)
    base = state.live_records(vendor.name) or sum(c.accepted for c in chunks)
    return DeleteCheck(deletes, base, math.floor(base * vendor.delete_cap_ratio))
