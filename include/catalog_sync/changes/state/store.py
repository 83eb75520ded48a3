"""StateStore: the state store's steps as plain calls, each in a transaction of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine

from catalog_sync.changes.state import ops
from catalog_sync.changes.state.engine import (
    Contention,
    StateStoreContended,
    configure_sqlite,
    migrate,
    transact,
)
from catalog_sync.changes.state.ops import Op

T = TypeVar("T")
P = ParamSpec("P")

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def _plain(step: Callable[P, Op[T]]) -> Callable[Concatenate[StateStore, P], T]:
    """A StateStore method that runs `step` in a transaction of its own."""

    def call(self: StateStore, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(step(*args, **kwargs))

    call.__doc__ = step.__doc__
    call.__name__ = step.__name__
    return call


@dataclass(frozen=True)
class Outcome:
    """What one step of a batch returned, or the error it alone raised."""

    value: Any = None
    error: Exception | None = None


class StateStore:
    """SQLAlchemy-backed store: a SQLite file by default, Postgres by URL.

    Opening it brings the schema to the newest migration (once per process and URL). These
    calls block while they wait for the database: async code goes through StateCalls.
    """

    def __init__(self, url: str, *, contention: Contention | None = None) -> None:
        self.url = url
        self.contention = contention or Contention()
        # pre_ping: a pooled connection that a Postgres restart killed is replaced, not used.
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            configure_sqlite(self.engine, self.contention.busy_timeout_ms)
        with _migrate_lock:
            if url not in _migrated:
                migrate(url)
                _migrated.add(url)

    def close(self) -> None:
        self.engine.dispose()

    def run(self, op: Op[T]) -> T:
        """One step in a transaction of its own, retried while SQLite is locked."""
        return transact(self.engine, self.url, op.run, writes=op.writes, policy=self.contention)

    def run_batch(self, steps: Sequence[Op[Any]]) -> list[Outcome]:
        """Several steps in one transaction (one commit, one lock wait).

        A step that fails rolls the batch back; the steps then run one by one, so only the
        failing one reports its error. StateStoreContended fails them all: the store is full.
        """

        def work(conn: Connection) -> list[Outcome]:
            return [Outcome(step.run(conn)) for step in steps]

        writes = any(step.writes for step in steps)
        try:
            return transact(self.engine, self.url, work, writes=writes, policy=self.contention)
        except StateStoreContended:
            raise
        except Exception as exc:
            if len(steps) == 1:
                return [Outcome(error=exc)]
        outcomes: list[Outcome] = []
        for step in steps:
            try:
                outcomes.append(Outcome(self.run(step)))
            except StateStoreContended:
                raise
            except Exception as exc:
                outcomes.append(Outcome(error=exc))
        return outcomes

    # -- each step of catalog_sync.changes.state.ops as a plain call, same arguments -----------------
    is_loaded = _plain(ops.is_loaded)
    mark_loaded = _plain(ops.mark_loaded)
    forget_run_files = _plain(ops.forget_run_files)
    applied = _plain(ops.applied)
    owner_of = _plain(ops.owner_of)
    live_records = _plain(ops.live_records)
    ledger_entry = _plain(ops.ledger_entry)
    record_pending = _plain(ops.record_pending)
    record_intent = _plain(ops.record_intent)
    record_applied = _plain(ops.record_applied)
    record_failed = _plain(ops.record_failed)
    run_changes = _plain(ops.changes_of_run)
    record_reverted = _plain(ops.record_reverted)
