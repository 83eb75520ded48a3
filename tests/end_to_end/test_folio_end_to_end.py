"""The demo_folio vendor's DAG against the FOLIO emulator: the pipeline as for Koha, another ILS.

Real parts throughout: dag.test() in-process, a real Redis, the FOLIO emulator over HTTP, and
the real LoC sample file. What FOLIO holds is read back through FOLIO's own storage APIs.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import pymarc
import pytest
import yaml

from catalog_sync.config import load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ADAPTERS, ILSSettings
from catalog_sync.ils.folio.adapter import FolioAdapter
from catalog_sync.paths import CONFIG_DIR, REPO_ROOT
from catalog_sync.services import ServiceProcess
from tests.end_to_end.harness import use_vendors
from tests.end_to_end.test_change_detection import modify_every_20th, read_sample
from tests.folio_emulator import CREDENTIALS, TENANT, cookie, login, start_folio

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
VENDOR = "demo_folio"


class Folio:
    """The FOLIO emulator of one test, and what it holds, read as a FOLIO client would."""

    def __init__(self, proc: ServiceProcess, home: Path) -> None:
        self.proc = proc
        self.home = home
        self.inbox = home / "inbox" / VENDOR
        self.http = httpx.Client(base_url=proc.url, timeout=30)
        token = cookie(login(self.http), "folioAccessToken")
        self.headers = {"X-Okapi-Tenant": TENANT, "X-Okapi-Token": token}

    def instances(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            response = self.http.get(
                "/instance-storage/instances",
                params={"query": "cql.allRecords=1", "limit": 1000, "offset": len(out)},
                headers=self.headers,
            )
            response.raise_for_status()
            page = response.json()["instances"]
            out += page
            if len(page) < 1000:
                return out

    def marc(self, instance_id: str) -> pymarc.Record:
        response = self.http.get(
            f"/source-storage/records/{instance_id}/formatted",
            params={"idType": "INSTANCE"},
            headers=self.headers,
        )
        response.raise_for_status()
        parsed = response.json()["parsedRecord"]["content"]
        return next(iter(pymarc.JSONReader(json.dumps(parsed))))

    def catalog(self) -> dict[str, list[str]]:
        """Every instance's MARC without our create stamp, by instance id."""
        return {
            i["id"]: [
                str(f) for f in self.marc(i["id"]).fields if not str(f).startswith("=035  \\\\$a(C")
            ]
            for i in self.instances()
        }

    def summary(self) -> dict[str, int]:
        report = self.home / "reports" / VENDOR / "latest" / "report.json"
        return dict(json.loads(report.read_text())["summary"])

    def deliver(self, records: list[pymarc.Record], name: str) -> None:
        for old in self.inbox.iterdir():
            old.unlink()
        (self.inbox / name).write_bytes(b"".join(r.as_marc() for r in records))


def run(**conf: Any) -> Any:
    from catalog_sync_airflow.factory import build_vendor_dag

    return build_vendor_dag(load_vendors()[VENDOR]).test(run_conf={"force": True, **conf})


@pytest.fixture
def folio_demo(
    tmp_path: Path, redis_url: str, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Folio]:
    proc = start_folio(tmp_path / "folio-emulator")
    home = tmp_path / "home"
    url = httpx.URL(proc.url)
    connection = {
        "conn_type": "http",
        "host": url.host,
        "port": url.port,
        "schema": "http",
        "login": CREDENTIALS["username"],
        "password": CREDENTIALS["password"],
        "extra": {"flavour": "folio", "tenant": TENANT, "max_concurrency": 8},
    }
    monkeypatch.setenv("AIRFLOW_CONN_ILS_FOLIO", json.dumps(connection))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG_SYNC_PII",
        json.dumps({"conn_type": "generic", "password": "test-only-pii-hash-key"}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_HOME", str(home))
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_REDIS_URL", redis_url)
    (home / "inbox" / VENDOR).mkdir(parents=True)
    folio = Folio(proc, home)
    try:
        yield folio
    finally:
        folio.http.close()
        proc.stop()


def control_numbers(records: list[pymarc.Record]) -> list[str]:
    return [r["001"].data.strip() for r in records]


def test_demo_file_loads_into_folio_with_the_koha_demo_summary(folio_demo: Folio) -> None:
    shutil.copy(SAMPLE, folio_demo.inbox / SAMPLE.name)

    assert run().state == "success"

    instances = folio_demo.instances()
    assert len(instances) == 1000 and {i["source"] for i in instances} == {"MARC"}
    assert folio_demo.summary() == {
        "records": 1000, "accepted": 1000, "rejected": 0, "created": 1000,
        "updated": 0, "deleted": 0, "unchanged": 0, "failed": 0, "held": 0,
    }  # fmt: skip
    loaded = [folio_demo.marc(i["id"])["001"].data.strip() for i in instances]
    assert sorted(loaded) == sorted(control_numbers(read_sample()))

    writes = EmulatorControl(folio_demo.proc.url).counters()["writes"]
    assert run().state == "success"  # the same file again: nothing to write
    assert folio_demo.summary()["unchanged"] == 1000
    assert EmulatorControl(folio_demo.proc.url).counters()["writes"] == writes


def test_lost_create_answers_make_each_instance_exactly_once(folio_demo: Folio) -> None:
    records = read_sample(200)
    folio_demo.deliver(records, "delivery-1.mrc")
    control = EmulatorControl(folio_demo.proc.url)
    # Three requests in ten dropped, all after FOLIO applied them: the answer is lost. Batches
    # carry 256 records, so 200 records are a few requests: a rarer drop could miss them all.
    control.set_faults(drop_rate=0.3, drop_after_share=1.0, seed=18)

    state = run().state
    control.clear_faults()
    assert control.counters().get("dropped_after_apply", 0) > 0
    if state != "success":  # a chunk that ran out of retries: its rerun resumes it
        assert run().state == "success"

    numbers = Counter(folio_demo.marc(i["id"])["001"].data.strip() for i in folio_demo.instances())
    assert sorted(numbers) == sorted(control_numbers(records))
    assert set(numbers.values()) == {1}


class _CatalogerBetween(FolioAdapter):
    """The real adapter; after each read a cataloguer saves the instance in FOLIO (a real
    PUT with the version read), as happens when staff edit while a run is in flight."""

    edits = 0

    async def get_biblio(self, biblio_id: str, *, correlation_id: str) -> bytes | None:
        copy = await super().get_biblio(biblio_id, correlation_id=correlation_id)
        await self._edit(biblio_id)
        return copy

    async def get_biblios(
        self, biblio_ids: Collection[str], *, correlation_id: str
    ) -> dict[str, bytes]:
        # Updates read their copies in batches (pipeline/copies.py): edited after that read.
        copies = await super().get_biblios(biblio_ids, correlation_id=correlation_id)
        for biblio_id in copies:
            await self._edit(biblio_id)
        return copies

    async def _edit(self, biblio_id: str) -> None:
        stored = self._read.get(biblio_id)
        if stored is not None:
            edited = {**stored, "discoverySuppress": True}
            edited.pop("metadata", None)
            response = await self.session.request(
                "PUT",
                f"/instance-storage/instances/{biblio_id}",
                correlation_id="cataloguer",
                json=edited,
            )
            assert response.status_code == 204, response.text
            type(self).edits += 1


@pytest.mark.parametrize("policy", ["review", "skip"])
def test_a_409_version_conflict_is_drift_under_the_vendors_policy(
    folio_demo: Folio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    vendor = yaml.safe_load((CONFIG_DIR / "vendors.yaml").read_text())["vendors"][VENDOR]
    use_vendors(tmp_path, monkeypatch, {VENDOR: {**vendor, "drift_policy": policy}})
    records = read_sample(40)
    folio_demo.deliver(records, "delivery-1.mrc")
    assert run().state == "success"
    before = folio_demo.catalog()
    touched = modify_every_20th(records)
    folio_demo.deliver(records, "delivery-2.mrc")

    def factory(settings: ILSSettings, redis_url: str | None) -> FolioAdapter:
        return _CatalogerBetween(settings, redis_url)

    monkeypatch.setitem(ADAPTERS, "folio", factory)
    _CatalogerBetween.edits = 0

    assert run().state == "success"

    assert _CatalogerBetween.edits == len(touched)
    summary = folio_demo.summary()
    assert summary["updated"] == 0 and summary["failed"] == 0
    assert folio_demo.catalog() == before  # the vendor's change did not overwrite FOLIO's
    assert summary["held"] == (len(touched) if policy == "review" else 0)
