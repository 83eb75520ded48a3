"""ILSHook reads the Airflow Connection the way HttpHook does, into ILSSettings."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from catalog_sync.ils import ILSSettings
from catalog_sync.leases import LeaseSettings
from ils.hooks import ILSHook, lease_settings


def env_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", **fields})
    )


def test_connection_fields_and_extras_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env_connection(
        monkeypatch,
        "ils_default",
        host="koha.library.example",
        schema="https",
        port=8443,
        login="catalog",
        password="s3cret-pass",
        extra={
            "flavour": "Koha",
            "rate_limit": "40",
            "max_concurrency": "6",
            "timeout": 12,
            "verify": "false",
            "client_id": "sync",
            "client_secret": "sync-secret",
        },
    )

    settings = ILSHook().settings()

    assert settings == ILSSettings(
        name="ils_default",
        base_url="https://koha.library.example:8443",
        flavour="koha",
        username="catalog",
        password="s3cret-pass",
        client_id="sync",
        client_secret="sync-secret",
        rate_limit=40.0,
        max_concurrency=6,
        timeout=12.0,
        verify_tls=False,
    )
    assert "s3cret" not in repr(settings) and "sync-secret" not in repr(settings)


def test_a_host_with_its_own_scheme_keeps_it_and_defaults_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_connection(monkeypatch, "ils_branch", host="http://127.0.0.1:8081/")

    settings = ILSHook(ils_conn_id="ils_branch").get_conn()

    assert settings.base_url == "http://127.0.0.1:8081"
    assert settings.name == "ils_branch"
    assert (settings.rate_limit, settings.max_concurrency, settings.verify_tls) == (None, 8, True)
    assert settings.username is None and settings.password is None


def test_reading_extras_leaves_the_connection_untouched() -> None:
    conn = Connection(
        conn_id="ils_default",
        conn_type="http",
        host="koha",
        extra=json.dumps({"rate_limit": 5, "verify": False, "flavour": "koha"}),
    )
    before = dict(conn.extra_dejson)

    ILSHook()._settings_from(conn)

    assert conn.extra_dejson == before


def test_unknown_extras_are_refused_rather_than_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    env_connection(monkeypatch, "ils_default", host="koha", extra={"rate_limt": 5})

    ok, message = ILSHook().test_connection()

    assert not ok and "rate_limt" in message


def test_the_hook_states_its_connection_contract() -> None:
    assert (ILSHook.conn_name_attr, ILSHook.default_conn_name, ILSHook.conn_type) == (
        "ils_conn_id",
        "ils_default",
        "http",
    )
    assert ILSHook().ils_conn_id == "ils_default"


def test_lease_timings_come_from_the_connection_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    # A deployment whose ILS answers slowly (or whose workers pause long) keeps leases longer.
    extra = {"lease_ttl": "90", "lease_wait": 180}
    env_connection(monkeypatch, "ils_default", host="koha", extra=extra)

    settings = ILSHook().get_conn()
    timings = lease_settings([settings])

    assert (settings.lease_ttl, settings.lease_wait) == (90.0, 180.0)
    assert (timings.ttl, timings.wait, timings.renew_interval) == (90, 180, 30)
    assert timings.max_held == LeaseSettings().max_held  # widened by the commit, not here


def test_without_lease_extras_a_connection_keeps_the_lease_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_connection(monkeypatch, "ils_default", host="koha")

    timings = lease_settings([ILSHook().get_conn()])

    assert (timings.ttl, timings.wait, timings.max_held) == (
        LeaseSettings.ttl, LeaseSettings.wait, LeaseSettings.max_held,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"lease_ttl": 120}, "lease_wait (60 s) must be at least lease_ttl (120 s)"),
        ({"lease_ttl": 30, "lease_wait": 10}, "lease_wait (10 s) must be at least lease_ttl"),
        ({"lease_ttl": 0}, "lease_ttl"),
        ({"lease_wait": -5}, "lease_wait"),
    ],
)
def test_lease_timings_a_commit_could_not_keep_are_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, object], named: str
) -> None:
    # A wait shorter than the TTL gives up while a dead worker's lease still stands.
    env_connection(monkeypatch, "ils_default", host="koha", extra=extra)

    ok, message = ILSHook().test_connection()

    assert not ok and named in message


def test_a_task_writing_to_several_ilss_takes_the_longest_lease_timings() -> None:
    # The revert DAG holds one set of leases over every connection the run wrote to.
    short = ILSSettings(name="a", base_url="http://a", lease_ttl=10, lease_wait=20)
    long = ILSSettings(name="b", base_url="http://b", lease_ttl=40, lease_wait=50)

    timings = lease_settings([short, long])

    assert (timings.ttl, timings.wait) == (40, 50)
