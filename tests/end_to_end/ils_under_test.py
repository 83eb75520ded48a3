"""The ILS a test runs against, either flavour: its emulator, its Connection, and what it holds.

What the ILS holds is read back through that ILS's own API, as a library's staff client would:
Koha's REST biblios (MARCXML), FOLIO's inventory instances and their MARC source records in SRS.
The emulator's /_emulator/ routes serve only to list Koha's biblio ids and to read the write log
(who created what), never as the evidence of content.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pymarc
import pytest

from catalog_sync.changes.fingerprint import ils_comparable
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings
from catalog_sync.services import ServiceProcess, start_emulator
from tests.folio_emulator import CREDENTIALS, TENANT, cookie, login, start_folio

Flavour = Literal["koha", "folio"]
FLAVOURS: tuple[Flavour, ...] = ("koha", "folio")
USER, PASSWORD = CREDENTIALS["username"], CREDENTIALS["password"]
_PAGE = 1000


@dataclass(frozen=True)
class HeldRecord:
    """One bibliographic record as the ILS holds it; `fields` is None for a FOLIO instance
    that has no MARC source record (a create cut short between its two writes)."""

    ils_id: str
    control_number: str | None
    fields: tuple[str, ...] | None


@dataclass
class IlsUnderTest:
    """One emulator process of either flavour, its Connection, and readers of what it holds."""

    flavour: Flavour
    proc: ServiceProcess
    _http: httpx.Client | None = field(default=None, repr=False)
    _folio_headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        return self.proc.url

    @property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.proc.url)

    def settings(self, name: str = "ils_test") -> ILSSettings:
        return ILSSettings(
            name=name,
            base_url=self.url,
            flavour=self.flavour,
            tenant=TENANT if self.flavour == "folio" else None,
            username=USER,
            password=PASSWORD,
        )

    def connection(self) -> dict[str, Any]:
        """The Airflow Connection (AIRFLOW_CONN_* JSON) a vendor's DAG reaches this ILS by."""
        url = httpx.URL(self.url)
        extra: dict[str, Any] = {"flavour": self.flavour, "max_concurrency": 8}
        if self.flavour == "folio":
            extra["tenant"] = TENANT
        return {
            "conn_type": "http", "host": url.host, "port": url.port, "schema": "http",
            "login": USER, "password": PASSWORD, "extra": extra,
        }  # fmt: skip

    def reset(self) -> None:
        self.control.reset()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- reading through the ILS's own API --------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=30)
        return self._http

    def _folio(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        http = self._client()
        for _ in range(2):  # a reset emulator has forgotten our token: log in again once
            if not self._folio_headers:
                token = cookie(login(http), "folioAccessToken")
                self._folio_headers = {"X-Okapi-Tenant": TENANT, "X-Okapi-Token": token}
            response = http.request(method, path, headers=self._folio_headers, **kwargs)
            if response.status_code != 401:
                return response
            self._folio_headers = {}
        return response

    def held(self) -> list[HeldRecord]:
        """Every bibliographic record the ILS holds, with its MARC content."""
        return self._folio_held() if self.flavour == "folio" else self._koha_held()

    def _koha_held(self) -> list[HeldRecord]:
        http = self._client()
        out = []
        for biblio in self.control.biblios():
            biblio_id = str(biblio["biblio_id"])
            response = http.get(
                f"/api/v1/biblios/{biblio_id}",
                headers={"Accept": "application/marcxml+xml"},
                auth=(USER, PASSWORD),
            )
            response.raise_for_status()
            record = pymarc.parse_xml_to_array(io.BytesIO(response.content))[0]
            out.append(_held(biblio_id, record))
        return out

    def folio_instances(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            response = self._folio(
                "GET",
                "/instance-storage/instances",
                params={"query": "cql.allRecords=1", "limit": _PAGE, "offset": len(out)},
            )
            response.raise_for_status()
            page = response.json()["instances"]
            out += page
            if len(page) < _PAGE:
                return out

    def folio_marc(self, instance_id: str) -> pymarc.Record | None:
        """The instance's MARC from SRS; None when SRS holds none for it."""
        response = self._folio(
            "GET",
            f"/source-storage/records/{instance_id}/formatted",
            params={"idType": "INSTANCE"},
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        parsed = response.json()["parsedRecord"]["content"]
        return next(iter(pymarc.JSONReader(json.dumps(parsed))))

    def _folio_held(self) -> list[HeldRecord]:
        out = []
        for instance in self.folio_instances():
            record = self.folio_marc(instance["id"])
            if record is None:
                out.append(HeldRecord(str(instance["id"]), None, None))
            else:
                out.append(_held(str(instance["id"]), record))
        return out

    def catalog(self) -> dict[str, tuple[str, ...] | None]:
        """Every record's content by ILS id, without what the ILS rebuilds on save."""
        return {h.ils_id: h.fields for h in self.held()}

    def copies_per_control_number(self) -> Counter[str | None]:
        """How many records the ILS holds per 001 (None: an instance without MARC)."""
        return Counter(h.control_number for h in self.held())

    # -- the write log ------------------------------------------------------------------------

    def creates_per_record(self) -> Counter[str]:
        """How many times each record id was created, deleted ones included (write log)."""
        writes = self.control.writes()
        if self.flavour == "folio":
            made = [w for w in writes if w["resource"] == "instance" and w["status"] == 201]
        else:
            made = [w for w in writes if w["resource"] == "biblio" and w["method"] == "POST"]
        return Counter(str(w["record_id"]) for w in made)

    def bib_deletes(self) -> int:
        resource = "instance" if self.flavour == "folio" else "biblio"
        writes = self.control.writes()
        return sum(1 for w in writes if w["resource"] == resource and w["method"] == "DELETE")

    def marc_updates(self) -> list[dict[str, Any]]:
        """Writes that replaced a record's MARC (Koha's biblio PUT, FOLIO's SRS record
        update), oldest first; each names its request id."""
        if self.flavour == "folio":
            return [
                w
                for w in self.control.writes()
                if w["resource"] == "srs_record" and w["status"] == 200
            ]
        return [
            w for w in self.control.writes() if w["resource"] == "biblio" and w["method"] == "PUT"
        ]

    def bib_writes(self) -> list[dict[str, Any]]:
        """The write log's entries for bibliographic records (Koha biblios; FOLIO instances
        and their SRS records), oldest first."""
        kinds = {"instance", "srs_record"} if self.flavour == "folio" else {"biblio"}
        return [w for w in self.control.writes() if w["resource"] in kinds]


def _held(ils_id: str, record: pymarc.Record) -> HeldRecord:
    number = record["001"].data.strip() if record["001"] is not None else None
    return HeldRecord(ils_id, number, tuple(str(f) for f in ils_comparable(record).fields))


def start_ils(flavour: Flavour, workdir: Path) -> ServiceProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    if flavour == "folio":
        return start_folio(workdir)
    return start_emulator(workdir, db=workdir / "emulator.db")


@pytest.fixture(scope="module", params=FLAVOURS)
def ils_under_test(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IlsUnderTest]:
    """Each ILS flavour in turn, one emulator per module and flavour (tests reset it)."""
    flavour: Flavour = request.param
    ils = IlsUnderTest(flavour, start_ils(flavour, tmp_path_factory.mktemp(flavour)))
    try:
        yield ils
    finally:
        ils.close()
        ils.proc.stop()


@pytest.fixture
def ils(ils_under_test: IlsUnderTest) -> IlsUnderTest:
    """The module's emulator of this flavour, emptied for the test."""
    ils_under_test.reset()
    return ils_under_test


VENDOR_OF: dict[Flavour, str] = {"koha": "demo", "folio": "demo_folio"}


@dataclass
class VendorRun:
    """The demo vendor of the ILS's flavour (vendors.yaml: demo, demo_folio), run by dag.test()
    in-process against that ILS's emulator, with a real Redis and its own home."""

    ils: IlsUnderTest
    home: Path

    @property
    def vendor(self) -> str:
        return VENDOR_OF[self.ils.flavour]

    @property
    def inbox(self) -> Path:
        return self.home / "inbox" / self.vendor

    def deliver(self, records: list[pymarc.Record], name: str) -> None:
        for old in self.inbox.iterdir():
            old.unlink()
        (self.inbox / name).write_bytes(b"".join(r.as_marc() for r in records))

    def run(self, **conf: Any) -> Any:
        from catalog_sync.config import load_vendors
        from catalog_sync_airflow.factory import build_vendor_dag

        dag = build_vendor_dag(load_vendors()[self.vendor])
        return dag.test(run_conf={"force": True, **conf})

    def revert(self, run_id: str) -> Any:
        from catalog_sync_airflow.revert import build_revert_dag

        return build_revert_dag().test(run_conf={"vendor": self.vendor, "run_id": run_id})

    def summary(self) -> dict[str, int]:
        report = self.home / "reports" / self.vendor / "latest" / "report.json"
        return dict(json.loads(report.read_text())["summary"])


@pytest.fixture
def vendor_run(
    ils: IlsUnderTest,
    tmp_path: Path,
    redis_url: str,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> VendorRun:
    from catalog_sync.config import load_vendors

    run = VendorRun(ils, tmp_path / "home")
    conn_id = load_vendors()[run.vendor].ils_conn_id
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(ils.connection()))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOG_SYNC_PII",
        json.dumps({"conn_type": "generic", "password": "test-only-pii-hash-key"}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_HOME", str(run.home))
    monkeypatch.setenv("AIRFLOW_VAR_CATALOG_SYNC_REDIS_URL", redis_url)
    run.inbox.mkdir(parents=True)
    return run
