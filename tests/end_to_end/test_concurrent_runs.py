"""Two vendors' DAG runs at once over the same ILS records: leases keep both changes.

Run for each ILS flavour (Koha with 100 shared records, FOLIO with 30); what each record holds
is read back through the ILS's own API.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pymarc
import pytest
import redis
import yaml
from pymarc import Field, Indicators, Record, Subfield, record_to_xml

from catalog_sync.changes.fingerprint import record_key
from catalog_sync.ils import open_client
from catalog_sync.leases import record_scope
from catalog_sync.paths import CONFIG_DIR, REPO_ROOT
from catalog_sync.pipeline.copies import GROUP_SIZE
from tests.end_to_end.ils_under_test import IlsUnderTest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
# FOLIO writes a record as two requests and reads it back as two: fewer records there.
SHARED_RECORDS = {"koha": 100, "folio": 30}
# Each vendor owns one field and protects the other's, so each run must keep what the other
# wrote: a read-merge-write that interleaves with the other run's would lose that change.
DEFAULT_PROTECTED = yaml.safe_load((CONFIG_DIR / "protected_fields.yaml").read_text())["protected"]
NOTE = "Vendor A review: recommended for the general collection."
LINK = "https://vendor-b.example.org/toc/"
RUN_DAG = """
import sys
from catalog_sync.config import load_vendors
from catalog_sync_airflow.factory import build_vendor_dag

run = build_vendor_dag(load_vendors()[sys.argv[1]]).test(run_conf={"force": True})
print("dag run state:", run.state)
sys.exit(0 if run.state == "success" else 1)
"""


def shared_records(count: int) -> list[Record]:
    with SAMPLE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None]
    return [copy.deepcopy(r) for r in records[:count]]


def vendor_a_edition(record: Record) -> Record:
    out = copy.deepcopy(record)
    note = Field(tag="500", indicators=Indicators(" ", " "), subfields=[Subfield("a", NOTE)])
    out.add_ordered_field(note)
    return out


def vendor_b_edition(record: Record) -> Record:
    out = copy.deepcopy(record)
    url = LINK + str(out["001"].data).strip()
    link = Field(tag="856", indicators=Indicators("4", "1"), subfields=[Subfield("u", url)])
    out.add_ordered_field(link)
    return out


def write_config(config_dir: Path) -> None:
    shutil.copytree(CONFIG_DIR, config_dir)
    feeds = {
        "lease_a": {"inbox": "inbox/lease_a", "protect": "856"},
        "lease_b": {"inbox": "inbox/lease_b", "protect": "500"},
    }
    vendors = {
        name: {
            "description": "Concurrency test feed",
            "ils_conn_id": "ils_default",
            "source": {"kind": "local", "inbox": feed["inbox"], "patterns": ["*.mrc"]},
            "protected_fields": [*DEFAULT_PROTECTED, feed["protect"]],
        }
        for name, feed in feeds.items()
    }
    body = {"vendors": vendors, "ils_connections": {"ils_default": {"pool_slots": 4}}}
    (config_dir / "vendors.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")


def seed_catalog(ils_under_test: IlsUnderTest, records: list[Record]) -> None:
    """The library's catalog already holds the records both vendors enrich."""

    async def main() -> None:
        async with open_client(ils_under_test.settings()) as ils:
            for n, record in enumerate(records):
                xml = record_to_xml(record, namespace=True)
                await ils.create_biblio(xml, correlation_id=f"seed-{n}")

    asyncio.run(main())


def runs_created(airflow_home: Path) -> set[str]:
    with sqlite3.connect(airflow_home / "airflow.db", timeout=10) as db:
        rows = db.execute("SELECT dag_id FROM dag_run").fetchall()
    return {str(r[0]).removeprefix("catalog_sync_") for r in rows}


def commits_running(airflow_home: Path) -> set[str]:
    with sqlite3.connect(airflow_home / "airflow.db", timeout=10) as db:
        rows = db.execute(
            "SELECT dag_id FROM task_instance WHERE task_id = 'commit_chunk' AND state = 'running'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_two_vendors_runs_at_once_on_shared_records_keep_both_changes(
    tmp_path: Path, redis_url: str, ils: IlsUnderTest, airflow_db: Path
) -> None:
    shared = SHARED_RECORDS[ils.flavour]
    records = shared_records(shared)
    home = tmp_path / "home"
    for name, edition in (("lease_a", vendor_a_edition), ("lease_b", vendor_b_edition)):
        inbox = home / "inbox" / name
        inbox.mkdir(parents=True)
        (inbox / f"{name}.mrc").write_bytes(b"".join(edition(r).as_marc() for r in records))
    write_config(tmp_path / "config")
    seed_catalog(ils, records)
    seeded = {h.control_number: h.ils_id for h in ils.held()}
    assert len(seeded) == shared

    # Both commits must meet on the same records: hold those leases until both have started.
    plain = redis.Redis.from_url(redis_url)
    held = [record_scope("ils_default", record_key(r, ["003", "001"]) or "") for r in records]
    for key in held:
        plain.set(key, "test-holds-until-both-runs-commit", px=120_000)

    connection = ils.connection()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / p) for p in ("include", "plugins", "dags")),
        "CATALOG_SYNC_CONFIG_DIR": str(tmp_path / "config"),
        "AIRFLOW_CONN_ILS_DEFAULT": json.dumps(connection),
        "AIRFLOW_CONN_CATALOG_SYNC_PII": json.dumps(
            {"conn_type": "generic", "password": "test-only-pii-hash-key"}
        ),
        "AIRFLOW_VAR_CATALOG_SYNC_HOME": str(home),
        "AIRFLOW_VAR_CATALOG_SYNC_REDIS_URL": redis_url,
    }
    runs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        log = (tmp_path / f"{name}.log").open("w")
        cmd = [sys.executable, "-c", RUN_DAG, name]
        runs[name] = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=log)

    def wait_for(what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 180
        while not done():
            ended = [n for n, p in runs.items() if p.poll() is not None]
            assert not ended, f"{ended} ended before {what}\n" + "\n".join(
                (tmp_path / f"{n}.log").read_text()[-3000:] for n in ended
            )
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    try:
        # dag.test() registers the DAG bundle in the shared metadata DB on its way in; two at
        # once collide on that row (UNIQUE dag_bundle.name), so B starts once A's run exists.
        start("lease_a")
        wait_for("A's run was created", lambda: runs_created(airflow_db) >= {"lease_a"})
        start("lease_b")
        both = {"catalog_sync_lease_a", "catalog_sync_lease_b"}
        wait_for("both commits started", lambda: commits_running(airflow_db) == both)
        time.sleep(1.0)  # both are now waiting on the held records
    finally:
        plain.delete(*held)
    codes = {name: proc.wait(timeout=300) for name, proc in runs.items()}
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in runs}
    assert codes == {"lease_a": 0, "lease_b": 0}, logs

    # Every shared record carries both vendors' changes: no update was lost.
    held = ils.held()
    assert {h.control_number: h.ils_id for h in held} == seeded  # the same records, no new one
    for h in held:
        content = "\n".join(h.fields or ())
        assert NOTE in content, h.control_number
        assert LINK + str(h.control_number) in content, h.control_number

    # The seed's creates, then each vendor's one MARC update per record.
    assert ils.creates_per_record() == Counter(dict.fromkeys(seeded.values(), 1))
    puts = ils.marc_updates()
    by_vendor = {v: [w for w in puts if w["request_id"].startswith(f"{v}:")] for v in runs}
    assert {v: len(w) for v, w in by_vendor.items()} == {"lease_a": shared, "lease_b": shared}
    assert len(puts) == 2 * shared
    # The runs really interleaved: their writes alternate more than once in the ILS's log.
    # Updates are leased a group at a time (pipeline/copies.py), so the runs can alternate only
    # between groups: with one group's worth of records (FOLIO's 30) one run waits for the
    # other's whole group, which "both commits started" above already shows.
    order = [w["request_id"].split(":")[0] for w in puts]
    switches = sum(a != b for a, b in itertools.pairwise(order))
    if shared > GROUP_SIZE:
        assert switches >= 2, order
    # A commit whose leases ran out (a starved worker) fails and Airflow retries it; the
    # report then counts the retry's writes, so only "nothing failed" holds in every case.
    for name in runs:
        summary = json.loads((home / "reports" / name / "latest" / "report.json").read_text())
        assert summary["summary"]["failed"] == 0
