"""A checkout reuses only the services it started itself (issue 14 item 8).

Two checkouts are two runtime folders (CATALOG_SYNC_HOME); the fixed port of `make demo` is
stood for by the same CATALOG_SYNC_*_PORT in both, a free port chosen here (never 8765/6379).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from tests.conftest import EmulatorFactory

from catalog_sync.devstack import ensure_services, ils_connections, stop_services
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ownservices import (
    emulator_answers,
    load_record,
    process_started,
    record_path,
    reusable,
)
from catalog_sync.paths import RuntimeLayout
from catalog_sync.services import free_port, pid_alive, redis_server_info


@pytest.fixture
def checkouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RuntimeLayout]]:
    """Two runtime folders whose services are stopped afterwards, each by its own records."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("CATALOG_SYNC_EMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("CATALOG_SYNC_REDIS_PORT", str(free_port()))
    homes = [RuntimeLayout(tmp_path / "first" / "var"), RuntimeLayout(tmp_path / "second" / "var")]
    yield homes
    for home in homes:
        stop_services(home)


@pytest.fixture
def foreign_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not a service of ours (it is what a reused pid would name)."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def _api_requests(url: str) -> int:
    return EmulatorControl(url).counters().get("requests", 0)


def _stop_and_wait(pid: int) -> None:
    """Our emulator crashing: gone, with its record left behind (this process started it)."""
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)


def test_a_second_checkout_starts_its_own_services_and_never_talks_to_the_firsts(
    checkouts: list[RuntimeLayout],
) -> None:
    first_home, second_home = checkouts
    first = ensure_services(first_home)
    before = EmulatorControl(first.emulator_url).counters()

    second = ensure_services(second_home)
    # What the second checkout's Airflow is given is its own emulator: one real API call there.
    conn = ils_connections(second)["ils_default"]
    response = httpx.get(
        f"{conn['schema']}://{conn['host']}:{conn['port']}/api/v1/biblios",
        auth=(conn["login"], conn["password"]),
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 200
    assert httpx.URL(second.emulator_url).port != httpx.URL(first.emulator_url).port
    assert second.redis_url != first.redis_url
    assert (second_home.root / "emulator.db").is_file()
    assert EmulatorControl(first.emulator_url).counters() == before
    assert _api_requests(second.emulator_url) == 1
    first_redis, second_redis = (redis_server_info(s.redis_url) or {} for s in (first, second))
    assert first_redis["process_id"] != second_redis["process_id"]

    # Each checkout reuses its own, and `make clean` in one stops only its own.
    assert ensure_services(second_home) == second
    assert stop_services(second_home) == ["emulator", "redis"]
    assert EmulatorControl(first.emulator_url).counters() == before
    assert ensure_services(first_home) == first


def test_a_record_whose_pid_is_now_another_process_is_neither_reused_nor_stopped(
    checkouts: list[RuntimeLayout], foreign_process: subprocess.Popen[bytes]
) -> None:
    home = checkouts[0]
    old = ensure_services(home)
    record = load_record(home.run_dir, "emulator")
    assert record is not None
    _stop_and_wait(record.pid)
    # The kernel gave the dead emulator's pid to another process.
    stale = replace(record, pid=foreign_process.pid)
    record_path(home.run_dir, "emulator").write_text(json.dumps(stale.__dict__))

    new = ensure_services(home)

    renewed = load_record(home.run_dir, "emulator")
    assert renewed is not None and renewed.pid != foreign_process.pid
    assert renewed.identity != record.identity
    assert new.redis_url == old.redis_url  # Redis is still ours and is kept
    assert _api_requests(new.emulator_url) == 0
    stop_services(home)
    assert pid_alive(foreign_process.pid) and foreign_process.poll() is None


def test_a_port_now_held_by_someone_elses_emulator_is_not_reused(
    checkouts: list[RuntimeLayout], emulator_factory: EmulatorFactory
) -> None:
    home = checkouts[0]
    ensure_services(home)
    record = load_record(home.run_dir, "emulator")
    assert record is not None
    _stop_and_wait(record.pid)
    someone_elses = emulator_factory(port=record.port)

    ours = ensure_services(home)
    stop_services(home)

    assert httpx.URL(ours.emulator_url).port != record.port
    assert EmulatorControl(someone_elses.url).counters() == {"writes": 0}
    assert someone_elses.process.poll() is None  # make clean left it running


def test_an_emulator_answering_without_our_token_is_not_ours_even_under_our_pid(
    tmp_path: Path, emulator_factory: EmulatorFactory
) -> None:
    """The identity check alone: a record forged to name a live emulator's pid and start."""
    someone_elses = emulator_factory()
    pid = someone_elses.process.pid
    started = process_started(pid)
    assert started is not None
    forged = {
        "name": "emulator",
        "pid": pid,
        "started": started,
        "port": httpx.URL(someone_elses.url).port,
        "url": someone_elses.url,
        "identity": "not-its-token",
    }
    record_path(tmp_path, "emulator").write_text(json.dumps(forged))

    assert reusable(tmp_path, "emulator", emulator_answers) is None
    forged["identity"] = someone_elses.identity
    record_path(tmp_path, "emulator").write_text(json.dumps(forged))
    assert reusable(tmp_path, "emulator", emulator_answers) is not None


def test_make_clean_leaves_a_process_group_whose_leader_took_a_recorded_airflow_pid(
    checkouts: list[RuntimeLayout],
) -> None:
    home = checkouts[0]
    home.run_dir.mkdir(parents=True)
    # A pid file left by a scheduler long gone (the machine rebooted since), whose pid now
    # leads a process group of someone else's that started after the file was written.
    pid_file = home.run_dir / "airflow-scheduler.pid"
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        pid_file.write_text(f"{other.pid} 127.0.0.1\n")
        long_ago = time.time() - 3600
        os.utime(pid_file, (long_ago, long_ago))

        stopped = stop_services(home)

        assert "airflow-scheduler" not in stopped
        assert other.poll() is None
        assert not (home.run_dir / "airflow-scheduler.pid").exists()
    finally:
        other.kill()
        other.wait()


def test_make_clean_stops_an_airflow_component_this_checkout_started(
    checkouts: list[RuntimeLayout],
) -> None:
    home = checkouts[0]
    home.run_dir.mkdir(parents=True)
    ours = subprocess.Popen(["sleep", "600"], start_new_session=True)
    (home.run_dir / "airflow-triggerer.pid").write_text(f"{ours.pid} 127.0.0.1\n")

    assert stop_services(home) == ["airflow-triggerer"]
    assert ours.wait() == -signal.SIGTERM


def test_make_clean_stops_an_api_server_whose_title_overwrote_its_environment(
    checkouts: list[RuntimeLayout],
) -> None:
    """The api-server sets its process title as below; setproctitle writes over the memory
    /proc/<pid>/environ reads, so CATALOG_SYNC_HOME is no longer seen there (the check
    `make clean` used to make, which left a killed `make airflow`'s api-server running)."""
    home = checkouts[0]
    home.run_dir.mkdir(parents=True)
    title = "import setproctitle, time; setproctitle.setproctitle({!r}); time.sleep(600)"
    ours = subprocess.Popen(
        [sys.executable, "-c", title.format("airflow api_server -- host:127.0.0.1 port:1")],
        start_new_session=True,
        env={**os.environ, "CATALOG_SYNC_HOME": str(home.root)},
    )
    (home.run_dir / "airflow-api-server.pid").write_text(f"{ours.pid} 127.0.0.1\n")
    environ = Path(f"/proc/{ours.pid}/environ")
    deadline = time.monotonic() + 20
    while f"CATALOG_SYNC_HOME={home.root}".encode() in environ.read_bytes().split(b"\0"):
        assert time.monotonic() < deadline, "the title never replaced the environment"
        time.sleep(0.05)

    assert stop_services(home) == ["airflow-api-server"]
    assert ours.wait(timeout=10) == -signal.SIGTERM


def test_make_clean_stops_a_service_an_older_checkout_recorded_in_a_pid_file(
    checkouts: list[RuntimeLayout], foreign_process: subprocess.Popen[bytes]
) -> None:
    """Before service records, `make demo` wrote "<pid> <url>" files: their services stop,
    and a pid in one that now names someone else's process does not."""
    home = checkouts[0]
    home.run_dir.mkdir(parents=True)
    env = {**os.environ, "CATALOG_SYNC_HOME": str(home.root)}  # as `make demo` exported it
    ours = subprocess.Popen(["sleep", "600"], env=env)
    (home.run_dir / "emulator.pid").write_text(f"{ours.pid} http://127.0.0.1:1\n")
    (home.run_dir / "redis.pid").write_text(f"{foreign_process.pid} redis://127.0.0.1:1/0\n")

    assert stop_services(home) == ["emulator"]
    assert ours.wait() == -signal.SIGTERM
    assert foreign_process.poll() is None
    assert list(home.run_dir.glob("*.pid")) == []
