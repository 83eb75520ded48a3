"""Fixtures for the FOLIO emulator: one process per module, reset between tests, and a session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pymarc
import pytest

from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.services import ServiceProcess, start_emulator

TENANT = "diku"
CREDENTIALS = {"username": "catalog", "password": "catalog-demo"}
FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
