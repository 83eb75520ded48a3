"""A record's own ledger rows are found through an index, not a scan of every record loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog_sync.changes.state import Op, StateStore, idempotency_key, ops


def plan_of(store: StateStore, op: Op[Any]) -> list[str]:
    """SQLite's query plan (the store's default database) of every SELECT `op` runs."""
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, params))

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        store.run(op)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    plans: list[str] = []
    with store.engine.connect() as conn:
        for statement, params in statements:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            plans += [str(row[-1]) for row in rows]
    return plans


def test_a_creates_lost_create_look_up_searches_by_record(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    key = idempotency_key("ils_folio", "DLC:1", "fp", "create")
    store.run(
        ops.record_pending(
            key, run_id="r", chunk_id="c", ils_id=None, ils="ils_folio", record_key="DLC:1",
            fingerprint="fp", action="create",
        )
    )  # fmt: skip
    store.run(
        ops.record_intent(
            run_id="r", ils="ils_folio", vendor="v", record_key="DLC:1", action="create",
            ils_id=None, pre_image=None,
        )
    )  # fmt: skip

    plans = plan_of(store, ops.lost_creates("ils_folio", "DLC:1"))

    assert len(plans) == 2, plans  # a pending create: the ledger, then the first intent
    assert any("commit_ledger_record" in p for p in plans), plans
    assert any("run_changes_record" in p for p in plans), plans
    assert not any(p.startswith("SCAN") for p in plans), plans
