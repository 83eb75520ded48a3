"""State store: schema by Alembic, pre-images and revert bookkeeping, on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog_sync.changes.state import StateCalls, StateStore, idempotency_key, ops
from catalog_sync.changes.state.store import _migrated

PG_URL = os.environ.get(
    "CATALOG_SYNC_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres:postgres@127.0.0.1:5432/test"
)


def _postgres_url() -> str:
    """A private schema on the test Postgres, or a skip saying what is missing."""
    url = sa.make_url(PG_URL)
    driver = url.get_driver_name()
    if importlib.util.find_spec(driver) is None:
        pytest.skip(f"Postgres driver {driver!r} is not installed in this environment")
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=1).close()
    except OSError:
        pytest.skip(f"no Postgres at {url.host}:{url.port}")
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    base = _postgres_url()
    schema = f"cs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield str(sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}))
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


FIELDS = {"ils": "ils_default", "record_key": "DLC:1", "fingerprint": "fp2", "action": "update"}


def test_opening_a_store_migrates_it_to_the_newest_revision(url: str) -> None:
    store = StateStore(url)
    inspector = sa.inspect(store.engine)
    assert {"loaded_files", "catalog_records", "commit_ledger", "run_changes"} <= set(
        inspector.get_table_names()
    )
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0004"


def test_a_store_made_before_migrations_is_adopted_with_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    legacy = sa.create_engine(url)
    with legacy.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE catalog_records (ils VARCHAR(64), record_key VARCHAR(255),"
                " ils_id VARCHAR(64), fingerprint VARCHAR(64), deleted VARCHAR(1) NOT NULL,"
                " run_id TEXT NOT NULL, applied_at DATETIME NOT NULL,"
                " PRIMARY KEY (ils, record_key))"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO catalog_records VALUES"
                " ('ils_default', 'DLC:1', '7', 'fp1', 'n', 'r0', '2026-01-01 00:00:00')"
            )
        )
    legacy.dispose()

    store = StateStore(url)

    applied = store.applied("ils_default", ["DLC:1"])["DLC:1"]
    assert (applied.ils_id, applied.fingerprint, applied.ils_fingerprint) == ("7", "fp1", None)


def test_the_first_pre_image_of_a_run_wins_and_revert_restores_the_state_row(url: str) -> None:
    store = StateStore(url)
    first = idempotency_key(FIELDS["ils"], "DLC:1", "fp1", "create")
    create = {**FIELDS, "fingerprint": "fp1", "action": "create"}
    store.record_pending(first, run_id="r1", chunk_id="c", ils_id=None, **create)
    store.record_applied(
        first, ils_id="7", run_id="r1", vendor="demo", ils_fingerprint="i1", **create
    )
    key = idempotency_key(FIELDS["ils"], "DLC:1", "fp2", "update", "fp1")
    store.record_pending(key, run_id="r2", chunk_id="c", ils_id="7", **FIELDS)
    intent = {"run_id": "r2", "ils": "ils_default", "vendor": "demo", "record_key": "DLC:1"}
    store.record_intent(**intent, action="update", ils_id="7", pre_image=b"<original/>")
    # A retry after a crash sees the ILS already holding the new content: its pre-image loses.
    store.record_intent(**intent, action="update", ils_id="7", pre_image=b"<written by r2/>")
    store.record_applied(
        key, ils_id="7", run_id="r2", vendor="demo", ils_fingerprint="i2", **FIELDS
    )

    [change] = store.run_changes("r2", "demo")
    assert (change.pre_image, change.status, change.prev_fingerprint) == (
        b"<original/>",
        "applied",
        "fp1",
    )
    assert store.live_records("demo") == 1
    assert store.owner_of("ils_default", "7") == "DLC:1"

    store.record_reverted(change, "7")

    back = store.applied("ils_default", ["DLC:1"])["DLC:1"]
    assert (back.fingerprint, back.ils_fingerprint) == ("fp1", "i1")
    entry = store.ledger_entry(key)
    assert entry is not None and entry.status == "reverted"
    assert store.run_changes("r2", "demo")[0].status == "reverted"


def test_reverting_a_create_forgets_the_record_and_the_runs_files(url: str) -> None:
    store = StateStore(url)
    key = idempotency_key("ils_default", "DLC:9", "fp", "create")
    create = {"ils": "ils_default", "record_key": "DLC:9", "fingerprint": "fp", "action": "create"}
    store.record_pending(key, run_id="r1", chunk_id="c", ils_id=None, **create)
    store.record_intent(
        run_id="r1", ils="ils_default", vendor="demo", record_key="DLC:9", action="create",
        ils_id=None, pre_image=None,
    )  # fmt: skip
    store.record_applied(key, ils_id="12", run_id="r1", vendor="demo", **create)
    store.mark_loaded("demo", "sha", "file.mrc", "r1")

    [change] = store.run_changes("r1", "demo")
    store.record_reverted(change, None)

    assert store.applied("ils_default", ["DLC:9"]) == {}
    assert store.forget_run_files("r1", "demo") == 1
    assert not store.is_loaded("demo", "sha")


def test_steps_committed_together_keep_their_effects_and_a_failing_one_fails_alone(
    url: str,
) -> None:
    store = StateStore(url)
    keys = [idempotency_key("ils_default", f"DLC:{i}", "fp", "create") for i in range(5)]
    # A real database error: loaded_files.name is NOT NULL.
    broken = ops.Op(
        lambda conn: conn.exec_driver_sql(
            "INSERT INTO loaded_files (vendor, sha256, run_id, loaded_at)"
            " VALUES ('demo', 'sha', 'r1', CURRENT_TIMESTAMP)"
        ),
        writes=True,
    )

    fields = {"ils": "ils_default", "fingerprint": "fp", "action": "create", "chunk_id": "c"}

    async def scenario() -> tuple[list[object], int]:
        async with StateCalls(store) as calls:
            steps = [
                calls.run(
                    ops.record_pending(
                        key, record_key=f"DLC:{i}", run_id="r1", ils_id=None, **fields
                    )
                )
                for i, key in enumerate(keys)
            ]
            outcomes = await asyncio.gather(*steps, calls.run(broken), return_exceptions=True)
            return outcomes, calls.transactions

    outcomes, transactions = asyncio.run(scenario())

    assert transactions == 1, "steps asked for together go in one transaction"
    assert outcomes[:5] == [None] * 5
    assert isinstance(outcomes[5], sa.exc.IntegrityError)
    entries = [store.ledger_entry(key) for key in keys]
    assert [e.status if e else None for e in entries] == ["pending"] * 5
    assert not store.is_loaded("demo", "sha")


def test_two_processes_opening_a_new_store_migrate_it_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = "import sys; from catalog_sync.changes.state import StateStore; StateStore(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, url]) for _ in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM alembic_version")).scalar() == 1


def test_the_head_revision_every_open_checks_against_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from catalog_sync.migrations import HEAD_REVISION, alembic_config

    # A new migration with HEAD_REVISION left behind would leave stores unmigrated.
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_reopening_a_store_at_head_does_not_load_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(url).close()
    code = (
        "import sys; from catalog_sync.changes.state import StateStore; StateStore(sys.argv[1])\n"
        "print('alembic' in sys.modules)"
    )
    reopened = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120
    )
    assert reopened.returncode == 0, reopened.stderr[-2000:]
    assert reopened.stdout.strip() == "False"


def test_a_store_one_revision_behind_is_migrated_on_open(url: str) -> None:
    from alembic import command

    from catalog_sync.migrations import alembic_config

    StateStore(url).close()
    command.downgrade(alembic_config(url=url), "-1")
    _migrated.discard(url)  # as a new task process would see it
    store = StateStore(url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0004"


def test_every_migration_downgrades_and_upgrades_again(url: str) -> None:
    from alembic import command

    from catalog_sync.migrations import alembic_config

    StateStore(url).close()
    command.downgrade(alembic_config(url=url), "base")
    engine = sa.create_engine(url)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    command.upgrade(alembic_config(url=url), "head")
    assert "run_changes" in sa.inspect(engine).get_table_names()
    engine.dispose()
