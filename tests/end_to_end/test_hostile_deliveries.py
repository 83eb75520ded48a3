"""Issue 14, "Done when": hostile deliveries of every kind, through `catalog-sync validate` and
through a DAG run, end with clean, operator-readable messages and write nothing outside the
runtime folder.

The kinds: traversal names from an HTTPS listing, from an SFTP server and in a local inbox,
listing entries on another origin (listed, and redirected to), a gzip and a zip bomb past the
vendor's caps, and a malformed RDF/XML delivery. HOME and TMPDIR point at empty folders for the
test, and every file under the test's folders outside the runtime folder is compared before and
after.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from catalog_sync.delivery.safety import printable_name
from tests.end_to_end.harness import DemoRun, use_vendors
from tests.integration.test_bibframe_malformed import truncated
from tests.integration.test_delivery_https import (
    HOSTILE_NAMES,
    PASSWORD,
    USER,
    FeedServer,
    _fixture,
    _gzip_bomb,
    _outside,
    _serve,
    _zip_bomb,
)
from tests.sftp_server import SftpServer

pytestmark = pytest.mark.slow

CAPS = {"max_unpacked_bytes": 10 << 20, "max_unpacked_members": 20}
BOMB = 100 << 20  # ~100 KB packed, 100 MB unpacked: ten times the cap
# A name that would forge report lines and clear an operator's terminal if shown raw.
FORGING = "x\n\x1b[2Jrun summary: records=0.mrc"
# What a hostile SFTP server lists in place of a file's real name.
SFTP_LISTED = {
    "evil1.mrc": b"../../escaped.mrc",
    "evil2.mrc": b"sub/../../../escaped.mrc",
    "evil3.mrc": b"nul\x00escaped.mrc",
    "evil4.mrc": FORGING.encode(),
}
SUMMARY = re.compile(r"^run summary: ")
FAIL_MESSAGE = re.compile(r"AirflowFailException: (.*)$", re.MULTILINE)


Watch = Callable[[], Callable[[Path], list[Path]]]


@pytest.fixture
def outside_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Watch:
    """HOME and TMPDIR on empty folders. Calling it notes every file under the test's folders
    (and any '*escaped*' beside them); what it returns then lists the files that appeared
    since, outside the runtime folder it is given."""
    home, tmp = tmp_path / "watched-home", tmp_path / "watched-tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile re-reads TMPDIR

    def watch() -> Callable[[Path], list[Path]]:
        before = set(_outside(tmp_path))
        return lambda runtime: sorted(set(_outside(tmp_path, runtime)) - before)

    return watch


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    yield from _serve()


@pytest.fixture
def other_host() -> Iterator[FeedServer]:
    yield from _serve()


def _assert_inert(text: str) -> None:
    """Every line printable (no control characters, no bidi overrides), no traceback."""
    assert "Traceback" not in text
    bad = [line for line in text.splitlines() if not line.isprintable()]
    assert bad == []


def _assert_refused_in_report(demo: DemoRun, vendor: str, expected: dict[str, str]) -> None:
    text = (demo.home / "reports" / vendor / "latest" / "report.txt").read_text("utf-8")
    lines = text.splitlines()
    for name, code in expected.items():
        assert f"  {printable_name(name)}: {code}" in lines, name
    _assert_inert(text)
    assert [line for line in lines if SUMMARY.match(line)] == [lines[-1]]


def _delivery(**settings: object) -> dict[str, object]:
    return {"stable_seconds": 0, "lookback_days": None, "patterns": ["*"], **CAPS, **settings}


def test_validate_reads_each_hostile_file_with_a_clean_message_and_writes_nowhere_else(
    tmp_path: Path, outside_writes: Watch
) -> None:
    runtime = tmp_path / "runtime"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "bomb.mrc.gz").write_bytes(_gzip_bomb(BOMB))
    (inputs / "bomb.zip").write_bytes(_zip_bomb(BOMB))
    truncated(inputs / "broken.rdf")
    # Names a file system can hold (no '/' or NUL): each a real record under a vendor's name.
    named = [n for n in [*HOSTILE_NAMES, FORGING] if "/" not in n and "\0" not in n]
    named = [n for n in named if n not in (".", "..") and len(n.encode()) < 255]
    for name in named:
        (inputs / name).write_bytes(_fixture("one.mrc"))
    env = {**os.environ, "CATALOG_SYNC_HOME": str(runtime)}
    appeared = outside_writes()
    expected_exit = {"bomb.mrc.gz": 1, "bomb.zip": 1, "broken.rdf": 1} | dict.fromkeys(named, 0)

    for i, (name, code) in enumerate(expected_exit.items()):
        report = runtime / "validate" / f"{i}.json"
        report.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "catalog_sync", "validate", str(inputs / name),
             "--report", str(report)],
            env=env, cwd=os.environ["HOME"], capture_output=True, text=True, check=False,
        )  # fmt: skip

        assert result.returncode == code, (name, result.stdout, result.stderr)
        _assert_inert(result.stdout + result.stderr)
        first = result.stdout.splitlines()[0]
        assert first.startswith(f"{printable_name(name)}")
        if code == 1:
            assert "not MARC" in first or "not well-formed RDF/XML at line" in first
    assert appeared(runtime) == []


def test_an_https_run_refuses_traversal_off_origin_and_bombs_and_loads_the_rest(
    demo: DemoRun,
    feed: FeedServer,
    other_host: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    outside_writes: Watch,
) -> None:
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    feed.publish("acme_bomb.mrc.gz", _gzip_bomb(BOMB))
    feed.publish("acme_bomb.zip", _zip_bomb(BOMB))
    feed.publish("acme_moved.mrc", _fixture("multi_isbn.mrc"))
    feed.redirects["acme_moved.mrc"] = other_host.url + "acme_moved.mrc"
    other_host.open_access = True
    other_host.publish("acme_cdn.mrc", _fixture("multi_isbn.mrc"))
    feed.extra_items = [{"name": n, "url": "acme_a.mrc"} for n in [*HOSTILE_NAMES, FORGING]]
    feed.extra_items.append({"name": "acme_cdn.mrc", "url": other_host.url + "acme_cdn.mrc"})
    delivery = _delivery(kind="https", conn_id="acme_feed", url=feed.url)
    use_vendors(
        tmp_path, monkeypatch, {"acme": {"source": {"kind": "https", "delivery": delivery}}}
    )
    connection = f"http://{USER}:{PASSWORD}@127.0.0.1:{feed.port}"
    monkeypatch.setenv("AIRFLOW_CONN_ACME_FEED", connection)

    appeared = outside_writes()
    run = demo.run(force=False, vendor="acme")

    assert run.state == "success"
    summary = demo.summary("acme")
    assert summary["records"] == summary["created"] == len(demo.stored()) == 1
    expected = dict.fromkeys([*HOSTILE_NAMES, FORGING], "unsafe_name") | {
        "acme_cdn.mrc": "off_origin",
        "acme_moved.mrc": "off_origin",
        "acme_bomb.mrc.gz": "unpack_limit",
        "acme_bomb.zip": "unpack_limit",
    }
    _assert_refused_in_report(demo, "acme", expected)
    assert other_host.requests == []
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert appeared(demo.home) == []


def test_an_sftp_run_refuses_the_names_a_hostile_server_lists(
    demo: DemoRun,
    sftp_server: SftpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    outside_writes: Watch,
) -> None:
    root = sftp_server.state.root
    (root / "acme_20261128.mrc").write_bytes(_fixture("one.mrc"))
    for on_disk, listed in SFTP_LISTED.items():
        (root / on_disk).write_bytes(_fixture("multi_isbn.mrc"))
        sftp_server.state.listed_as[on_disk] = listed
    delivery = _delivery(kind="sftp", conn_id="acme_sftp", remote_dir="/")
    source = {"kind": "sftp", "delivery": delivery}
    use_vendors(tmp_path, monkeypatch, {"acme": {"source": source}})
    monkeypatch.setenv("AIRFLOW_CONN_ACME_SFTP", sftp_server.airflow_connection())

    appeared = outside_writes()
    run = demo.run(force=False, vendor="acme")

    assert run.state == "success"
    assert demo.summary("acme")["created"] == len(demo.stored()) == 1
    expected = {listed.decode(): "unsafe_name" for listed in SFTP_LISTED.values()}
    _assert_refused_in_report(demo, "acme", expected)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert appeared(demo.home) == []


def test_a_local_inbox_run_refuses_hostile_names_and_loads_the_rest(
    demo: DemoRun, capfd: pytest.CaptureFixture[str], outside_writes: Watch
) -> None:
    (demo.inbox / "acme_20261128.mrc").write_bytes(_fixture("one.mrc"))
    # What a vendor writing into our folder can name a file: the SFTP server's forging name,
    # a leading dash, a name of dots, Windows separators and a Latin-1 name (its bytes).
    names = [FORGING.encode(), b"-rf.mrc", b"...mrc", b"..\\..\\escaped.mrc", b"caf\xe9.mrc"]
    for name in names:
        with open(os.path.join(os.fsencode(demo.inbox), name), "wb") as handle:
            handle.write(_fixture("multi_isbn.mrc"))

    appeared = outside_writes()
    run = demo.run(force=False)

    assert run.state == "success"
    assert demo.summary()["created"] == len(demo.stored()) == 1
    expected = {n.decode("utf-8", "backslashreplace"): "unsafe_name" for n in names}
    _assert_refused_in_report(demo, "demo", expected)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert appeared(demo.home) == []


def test_a_malformed_rdfxml_delivery_fails_fetch_once_with_one_clean_message(
    demo: DemoRun,
    capfd: pytest.CaptureFixture[str],
    outside_writes: Watch,
) -> None:
    truncated(demo.inbox / "delivery.rdf")

    appeared = outside_writes()
    run = demo.run()

    assert run.state == "failed"
    fetch = {ti.task_id: ti for ti in run.get_task_instances()}["fetch"]
    assert (fetch.state, fetch.try_number) == ("failed", 1)
    out, err = capfd.readouterr()
    # The task's failure message: the operator's sentence, one line, and nothing else.
    messages = set(FAIL_MESSAGE.findall(out + err))
    assert len(messages) == 1, messages
    message = messages.pop()
    assert re.fullmatch(
        r"vendor file delivery\.rdf is not well-formed RDF/XML at line \d+, column \d+: .+",
        message,
    ), message
    _assert_inert(message)
    assert demo.writes() == []
    assert appeared(demo.home) == []
