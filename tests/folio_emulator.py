"""Fixtures for the FOLIO emulator: one process per module, reset between tests, and a session."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pymarc
import pytest

from catalog_sync.changes.stamp import stamp_record
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.ils.client import ILSClient
from catalog_sync.pipeline.commit_job import marcxml
from catalog_sync.services import ServiceProcess, start_emulator

TENANT = "diku"
CREDENTIALS = {"username": "catalog", "password": "catalog-demo"}
FIXTURES = Path(__file__).resolve().parent / "fixtures"
T = TypeVar("T")


def start_folio(workdir: Path, *extra: str) -> ServiceProcess:
    return start_emulator(
        workdir, db=workdir / "folio.db", extra_args=["--flavour", "folio", *extra]
    )


@pytest.fixture(scope="module")
def shared_folio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One FOLIO emulator for a module's tests that need no special options."""
    proc = start_folio(tmp_path_factory.mktemp("folio"), "--max-batch", "50")
    yield proc
    proc.stop()


@pytest.fixture
def folio(shared_folio: ServiceProcess) -> ServiceProcess:
    EmulatorControl(shared_folio.url).reset()
    return shared_folio


@dataclass
class Okapi:
    """A logged-in raw HTTP session: X-Okapi-Tenant and X-Okapi-Token on every call."""

    client: httpx.Client
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Okapi-Tenant": TENANT, "X-Okapi-Token": self.token}

    def get(self, path: str, **params: str | int) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers)

    def post(self, path: str, body: object, **params: str) -> httpx.Response:
        return self.client.post(path, json=body, params=params, headers=self.headers)

    def put(self, path: str, body: object) -> httpx.Response:
        return self.client.put(path, json=body, headers=self.headers)

    def delete(self, path: str) -> httpx.Response:
        return self.client.delete(path, headers=self.headers)


def login(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/authn/login-with-expiry", json=CREDENTIALS, headers={"X-Okapi-Tenant": TENANT}
    )


def cookie(response: httpx.Response, name: str) -> str:
    """A token from Set-Cookie (Secure cookies: httpx's jar would not send them over http)."""
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


@pytest.fixture
def okapi(folio: ServiceProcess) -> Iterator[Okapi]:
    with httpx.Client(base_url=folio.url, timeout=10) as client:
        yield Okapi(client, cookie(login(client), "folioAccessToken"))


@pytest.fixture(scope="session")
def loc_records() -> list[pymarc.Record]:
    """30 real LoC records (traject's test_data.utf8.mrc; see fixtures/marc/PROVENANCE.md)."""
    with (FIXTURES / "marc" / "test_data.utf8.mrc").open("rb") as handle:
        return [r for r in pymarc.MARCReader(handle, to_unicode=True) if r is not None]


def settings(url: str, tenant: str = TENANT, **extra: Any) -> ILSSettings:
    """The pipeline's settings for the emulator's FOLIO, as a deployment's Connection gives them."""
    return ILSSettings(
        name="ils_folio",
        base_url=url,
        flavour="folio",
        tenant=tenant,
        username=CREDENTIALS["username"],
        password=CREDENTIALS["password"],
        max_attempts=4,
        **extra,
    )


def run(url: str, body: Callable[[ILSClient], Awaitable[T]], tenant: str = TENANT) -> T:
    """`body` on a fresh client for the emulator's FOLIO, opened as the pipeline opens one."""

    async def main() -> T:
        async with open_client(settings(url, tenant)) as ils:
            return await body(ils)

    return asyncio.run(main())


def stamped(record: pymarc.Record, key: str) -> bytes:
    """The record as the pipeline sends it: MARCXML carrying its idempotency stamp."""
    return marcxml(stamp_record(copy.deepcopy(record), key))


def instances(okapi: Okapi) -> list[dict[str, object]]:
    """Every instance FOLIO holds, read back over the raw API rather than the adapter under test."""
    response = okapi.get("/instance-storage/instances", limit=1000, query="cql.allRecords=1")
    assert response.status_code == 200, response.text
    return list(response.json()["instances"])


def srs_record(okapi: Okapi, instance_id: str) -> httpx.Response:
    """The SRS record FOLIO links to an instance (200 only when the MARC is there and linked)."""
    return okapi.get(f"/source-storage/records/{instance_id}/formatted", idType="INSTANCE")


def edit_in_folio(okapi: Okapi, instance_id: str) -> None:
    """Someone edits the instance in FOLIO after our read: its _version moves on."""
    stored = okapi.get(f"/instance-storage/instances/{instance_id}").json()
    stored.pop("metadata", None)
    edited = {**stored, "discoverySuppress": True}
    assert okapi.put(f"/instance-storage/instances/{instance_id}", edited).status_code == 204


def staff_edit_before(
    okapi: Okapi, route: tuple[str, str], item_id: str, changes: dict[str, Any]
) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request hook: just before the client's first request to `route` (method,
    path) leaves, a librarian saves `changes` to item `item_id` in FOLIO (the emulator bumps
    its _version), so the client's copy of it is stale."""
    fired = False

    async def hook(request: httpx.Request) -> None:
        nonlocal fired
        if (request.method, request.url.path) == route and not fired:
            fired = True
            path = f"/item-storage/items/{item_id}"
            current = okapi.get(path).json()
            assert okapi.put(path, {**current, **changes}).status_code == 204

    return hook
