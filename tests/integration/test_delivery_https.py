"""HTTPS-style delivery against a real HTTP server on loopback (listing, auth, dropped bodies)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catalog_sync.delivery import (
    DeliveryAuthError,
    DeliverySource,
    DeliveryUnavailableError,
    fetch_https,
    fetch_options,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "delivery"
USER, PASSWORD = "acme-feed", "h77p-Secret"
DAY = 86400.0


@dataclass
class Published:
    body: bytes
    modified: float


@dataclass
class FeedServer:
    """A vendor feed: /feed/ lists files as JSON, /feed/<name> serves them (Basic auth)."""

    files: dict[str, Published] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)  # name -> bodies to cut in half
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed/"

    def publish(self, name: str, body: bytes, age_days: float = 0) -> None:
        self.files[name] = Published(body, time.time() - age_days * DAY)


def _handler(feed: FeedServer) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `feed.requests` instead."""

        def _authorised(self) -> bool:
            feed.requests.append(f"{self.command} {self.path}")
            if self.headers.get("Authorization") == expected:
                return True
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="feed"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_GET(self) -> None:
            if not self._authorised():
                return
            if self.path == "/feed/":
                listing = [
                    {
                        "name": n,
                        "size": len(p.body),
                        "modified": formatdate(p.modified, usegmt=True),
                    }
                    for n, p in sorted(feed.files.items())
                ]
                self._send(json.dumps(listing).encode(), "application/json")
                return
            if self.path == "/index/":  # an Apache-style HTML index of the same files
                links = "".join(f'<a href="/feed/{n}">{n}</a>' for n in sorted(feed.files))
                html = f'<html><body><a href="../">Parent</a>{links}</body></html>'
                self._send(html.encode(), "text/html")
                return
            name = self.path.removeprefix("/feed/")
            if name not in feed.files:
                self.send_error(404)
                return
            body = feed.files[name].body
            if feed.drops.get(name):
                feed.drops[name] -= 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
                self.close_connection = True
                return
            self._send(body, "application/octet-stream")

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    state = FeedServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def _no_sleep(seconds: float) -> None:
    """Retries and looks happen at once in tests; waits are not what is under test here."""


def test_new_files_are_fetched_and_old_or_already_loaded_ones_skipped(
    feed: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_20261128.mrc", _fixture("one.mrc"))
    feed.publish("acme_20261127.mrc", _fixture("multi_isbn.mrc"))
    feed.publish("acme_20260901.mrc", _fixture("test_data.utf8.mrc"), age_days=88)
    loaded = hashlib.sha256(_fixture("multi_isbn.mrc")).hexdigest()
    # Configured as vendors.yaml would: a DeliverySource, credentials from the Connection.
    source = DeliverySource(
        kind="https", conn_id="acme_feed", url=feed.url, patterns=["*.mrc"], lookback_days=7,
        stable_seconds=0,
    )  # fmt: skip
    report = fetch_https(
        source.url or "", landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
        username=USER, password=PASSWORD, already_loaded=lambda name, sha: sha == loaded,
        sleep=_no_sleep, **fetch_options(source),
    )  # fmt: skip
    (fetched,) = report.fetched
    assert fetched.name == "acme_20261128.mrc"
    assert fetched.path.read_bytes() == _fixture("one.mrc")
    assert fetched.sha256 == hashlib.sha256(_fixture("one.mrc")).hexdigest()
    assert report.too_old == ["acme_20260901.mrc"]
    assert report.already_loaded == ["acme_20261127.mrc"]
    assert "GET /feed/acme_20260901.mrc" not in feed.requests  # old files are not downloaded


def test_a_dropped_connection_is_retried_without_a_corrupt_landing_file(
    feed: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_full.mrc", _fixture("test_data.utf8.mrc"))
    feed.drops["acme_full.mrc"] = 1
    landing = tmp_path / "landing"
    report = fetch_https(
        feed.url, landing_dir=landing, archive_dir=tmp_path / "archive", username=USER,
        password=PASSWORD, attempts=3, sleep=_no_sleep,
    )  # fmt: skip
    assert feed.requests.count("GET /feed/acme_full.mrc") == 2
    (fetched,) = report.fetched
    assert report.attempts == {"acme_full.mrc": 2}
    assert fetched.path.read_bytes() == _fixture("test_data.utf8.mrc")
    assert _files(landing) == [fetched.path]


def test_a_body_cut_short_on_every_attempt_lands_nothing(feed: FeedServer, tmp_path: Path) -> None:
    feed.publish("acme_full.mrc", _fixture("test_data.utf8.mrc"))
    feed.drops["acme_full.mrc"] = 5
    with pytest.raises(DeliveryUnavailableError):
        fetch_https(
            feed.url, landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
            username=USER, password=PASSWORD, attempts=2, sleep=_no_sleep,
        )  # fmt: skip
    assert feed.requests.count("GET /feed/acme_full.mrc") == 2
    assert _files(tmp_path / "landing") == [] and _files(tmp_path / "archive") == []


def test_wrong_credentials_end_at_once_with_a_clear_message(
    feed: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_20261128.mrc", _fixture("one.mrc"))
    with pytest.raises(DeliveryAuthError) as caught:
        fetch_https(
            feed.url, landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
            username=USER, password="not-the-password", attempts=5, sleep=_no_sleep,
        )  # fmt: skip
    message = str(caught.value)
    assert f"127.0.0.1:{feed.port}" in message and USER in message and "401" in message
    assert "not-the-password" not in message
    assert feed.requests == ["GET /feed/"]  # one refused request, no retry


def test_a_zip_delivery_is_unpacked_into_its_member_files(feed: FeedServer, tmp_path: Path) -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/acme_a.mrc", _fixture("one.mrc"))
        archive.writestr("export/acme_b.mrc", _fixture("multi_isbn.mrc"))
        archive.writestr("export/acme_empty.mrc", b"")
    feed.publish("acme_weekly.zip", packed.getvalue())
    report = fetch_https(
        feed.url, landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
        username=USER, password=PASSWORD, patterns=["*.zip"], sleep=_no_sleep,
    )  # fmt: skip
    assert [(f.name, f.path.read_bytes()) for f in report.fetched] == [
        ("acme_a.mrc", _fixture("one.mrc")),
        ("acme_b.mrc", _fixture("multi_isbn.mrc")),
    ]
    assert report.empty == ["acme_weekly.zip:acme_empty.mrc"]
    assert {f.delivered_as for f in report.fetched} == {"acme_weekly.zip"}
    assert _files(tmp_path / "landing") == sorted(f.path for f in report.fetched)


def test_an_html_index_listing_is_followed_to_its_files(feed: FeedServer, tmp_path: Path) -> None:
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    feed.publish("acme_b.xml", b"<not wanted/>")
    report = fetch_https(
        feed.url.replace("/feed/", "/index/"), landing_dir=tmp_path / "landing",
        archive_dir=tmp_path / "archive", username=USER, password=PASSWORD,
        patterns=["*.mrc"], sleep=_no_sleep,
    )  # fmt: skip
    assert [(f.name, f.size) for f in report.fetched] == [("acme_a.mrc", len(_fixture("one.mrc")))]
    assert "GET /feed/acme_b.xml" not in feed.requests
