"""ILSHook reads the Airflow Connection the way HttpHook does, into ILSSettings."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from catalog_sync.ils import ILSSettings
from ils.hooks import ILSHook


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
