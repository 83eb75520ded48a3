"""HTTPS-style delivery against a real HTTP server on loopback (listing, auth, dropped bodies)."""

from __future__ import annotations

import base64
import gzip
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
from urllib.parse import unquote

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
    # A hostile or careless vendor: extra JSON listing items and HTML hrefs, served as given.
    extra_items: list[dict[str, object]] = field(default_factory=list)
    extra_hrefs: list[str] = field(default_factory=list)
    unlisted: dict[str, bytes] = field(default_factory=dict)  # served, but in no listing
    redirects: dict[str, str] = field(default_factory=dict)  # name -> Location of a 302
    open_access: bool = False  # answer without credentials (a CDN, say)
    authorization: list[str | None] = field(default_factory=list)  # the header of each request

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
            feed.authorization.append(self.headers.get("Authorization"))
            if feed.open_access or self.headers.get("Authorization") == expected:
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
                ] + feed.extra_items
                self._send(json.dumps(listing).encode(), "application/json")
                return
            if self.path == "/index/":  # an Apache-style HTML index of the same files
                hrefs = [f"/feed/{n}" for n in sorted(feed.files)] + feed.extra_hrefs
                links = "".join(f'<a href="{h}">x</a>' for h in hrefs)
                html = f'<html><body><a href="../">Parent</a>{links}</body></html>'
                self._send(html.encode(), "text/html")
                return
            name = unquote(self.path.removeprefix("/feed/"))
            if name in feed.redirects:
                self.send_response(302)
                self.send_header("Location", feed.redirects[name])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if name in feed.unlisted:
                self._send(feed.unlisted[name], "application/octet-stream")
                return
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


def _serve() -> Iterator[FeedServer]:
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


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    yield from _serve()


@pytest.fixture
def other_host() -> Iterator[FeedServer]:
    """A second server on another port: another origin than the vendor's listing."""
    yield from _serve()


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


# Names a hostile vendor might list: each must be refused, none may reach the disk.
HOSTILE_NAMES = [
    "../../escaped.mrc",
    "sub/../../../escaped.mrc",
    "..\\..\\escaped.mrc",
    ".",
    "..",
    ".profile.mrc",
    "nul\x00escaped.mrc",
    "a" * 300 + ".mrc",
]


def escaped_beside(tmp_path: Path) -> list[Path]:
    """`*escaped*` entries beside the test's folder, where a traversal from its landing folder
    would end; the other tests' folders there are theirs (one of them plants such names)."""
    return sorted(p for p in tmp_path.parent.iterdir() if "escaped" in p.name)


def _outside(tmp_path: Path, *inside: Path) -> list[Path]:
    """Files written beside the test's folder or in it, except in the given folders."""
    return escaped_beside(tmp_path) + [
        p for p in _files(tmp_path) if not any(p.is_relative_to(d) for d in inside)
    ]


def test_a_json_listing_with_unsafe_names_has_them_refused_and_nothing_lands_outside(
    feed: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    feed.extra_items = [{"name": name, "url": "acme_a.mrc"} for name in HOSTILE_NAMES]
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    report = fetch_https(
        feed.url, landing_dir=landing, archive_dir=archive, username=USER, password=PASSWORD,
        sleep=_no_sleep,
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["acme_a.mrc"]
    assert sorted(report.refused) == sorted(HOSTILE_NAMES)
    assert all(reason.startswith("unsafe name") for reason in report.refused.values())
    assert feed.requests.count("GET /feed/acme_a.mrc") == 1  # the refused ones were not fetched
    assert _outside(tmp_path, landing, archive) == []


def test_an_html_index_with_encoded_traversal_hrefs_has_them_refused(
    feed: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    hostile = {
        "/feed/sub%2F..%2F..%2F..%2Fescaped.mrc": "sub/../../../escaped.mrc",
        "/feed/..%5C..%5Cescaped.mrc": "..\\..\\escaped.mrc",
        "/feed/%2E%2E": "..",
        "/feed/.escaped.mrc": ".escaped.mrc",
        "/feed/nul%00escaped.mrc": "nul\x00escaped.mrc",
    }
    feed.unlisted = {decoded: _fixture("one.mrc") for decoded in hostile.values()}
    feed.extra_hrefs = list(hostile)
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    report = fetch_https(
        feed.url.replace("/feed/", "/index/"), landing_dir=landing, archive_dir=archive,
        username=USER, password=PASSWORD, sleep=_no_sleep,
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["acme_a.mrc"]
    assert sorted(report.refused) == sorted(hostile.values())
    assert not any(r.startswith("GET /feed/sub") or "escaped" in r for r in feed.requests)
    assert _outside(tmp_path, landing, archive) == []


def test_credentials_go_to_the_listing_origin_only_and_other_origins_are_refused(
    feed: FeedServer, other_host: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    other_host.open_access = True
    other_host.publish("acme_cdn.mrc", _fixture("multi_isbn.mrc"))
    feed.extra_items = [{"name": "acme_cdn.mrc", "url": other_host.url + "acme_cdn.mrc"}]
    report = fetch_https(
        feed.url, landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
        username=USER, password=PASSWORD, sleep=_no_sleep,
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["acme_a.mrc"]
    assert f"127.0.0.1:{other_host.port}" in report.refused["acme_cdn.mrc"]
    assert other_host.requests == [] and other_host.authorization == []
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert set(feed.authorization) == {expected}


def test_a_redirect_to_another_origin_is_refused_before_it_is_followed(
    feed: FeedServer, other_host: FeedServer, tmp_path: Path
) -> None:
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    feed.publish("acme_moved.mrc", _fixture("multi_isbn.mrc"))
    feed.redirects["acme_moved.mrc"] = other_host.url + "acme_moved.mrc"
    other_host.open_access = True
    other_host.publish("acme_moved.mrc", _fixture("multi_isbn.mrc"))
    report = fetch_https(
        feed.url, landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
        username=USER, password=PASSWORD, sleep=_no_sleep,
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["acme_a.mrc"]
    assert f"127.0.0.1:{other_host.port}" in report.refused["acme_moved.mrc"]
    assert other_host.requests == []


def test_an_origin_the_vendor_allows_is_fetched_without_the_credentials(
    feed: FeedServer, other_host: FeedServer, tmp_path: Path
) -> None:
    feed.open_access = True  # checked below: the token still goes to the listing's origin
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    other_host.open_access = True
    other_host.publish("acme_cdn.mrc", _fixture("multi_isbn.mrc"))
    feed.extra_items = [{"name": "acme_cdn.mrc", "url": other_host.url + "acme_cdn.mrc"}]
    source = DeliverySource(
        kind="https", conn_id="acme_feed", url=feed.url, patterns=["*.mrc"], stable_seconds=0,
        allowed_origins=[f"http://127.0.0.1:{other_host.port}"],
    )  # fmt: skip
    report = fetch_https(
        feed.url, landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
        token="tok-Secret", allowed_origins=source.allowed_origins, sleep=_no_sleep,
        **fetch_options(source),
    )  # fmt: skip
    assert sorted(f.name for f in report.fetched) == ["acme_a.mrc", "acme_cdn.mrc"]
    assert report.refused == {}
    assert other_host.requests == ["GET /feed/acme_cdn.mrc"]
    assert other_host.authorization == [None]
    assert set(feed.authorization) == {"Bearer tok-Secret"}


def _gzip_bomb(size: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as packed:
        block = b"\0" * (1 << 20)
        for _ in range(size // len(block)):
            packed.write(block)
    return out.getvalue()


def _zip_bomb(size: int) -> bytes:
    """One member of `size` zero bytes, deflated (~100 KB per 100 MB)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("acme_big.mrc", "w", force_zip64=True) as member,
    ):
        block = b"\0" * (1 << 20)
        for _ in range(size // len(block)):
            member.write(block)
    return out.getvalue()


def test_a_gzip_bomb_is_refused_past_the_vendors_byte_cap(feed: FeedServer, tmp_path: Path) -> None:
    bomb = _gzip_bomb(100 << 20)  # ~100 KB that unpacks to 100 MB
    assert len(bomb) < 200_000
    feed.publish("acme_bomb.mrc.gz", bomb)
    feed.publish("acme_a.mrc", _fixture("one.mrc"))
    source = DeliverySource(
        kind="https", conn_id="acme_feed", url=feed.url, patterns=["*.mrc", "*.gz"],
        stable_seconds=0, max_unpacked_bytes=10 << 20,
    )  # fmt: skip
    landing = tmp_path / "landing"
    report = fetch_https(
        feed.url, landing_dir=landing, archive_dir=tmp_path / "archive", username=USER,
        password=PASSWORD, sleep=_no_sleep, **fetch_options(source),
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["acme_a.mrc"]
    assert "10485760 bytes" in report.refused["acme_bomb.mrc.gz"]
    assert _files(landing) == [report.fetched[0].path]  # no partial member left behind


def test_a_zip_bomb_is_refused_by_bytes_and_a_zip_of_many_members_by_count(
    feed: FeedServer, tmp_path: Path
) -> None:
    bomb = _zip_bomb(100 << 20)
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(50):
            archive.writestr(f"acme_{i:03}.mrc", _fixture("one.mrc"))
    feed.publish("acme_bomb.zip", bomb)
    feed.publish("acme_many.zip", many.getvalue())
    source = DeliverySource(
        kind="https", conn_id="acme_feed", url=feed.url, patterns=["*.zip"], stable_seconds=0,
        max_unpacked_bytes=10 << 20, max_unpacked_members=20,
    )  # fmt: skip
    landing = tmp_path / "landing"
    report = fetch_https(
        feed.url, landing_dir=landing, archive_dir=tmp_path / "archive", username=USER,
        password=PASSWORD, sleep=_no_sleep, **fetch_options(source),
    )  # fmt: skip
    assert report.fetched == []
    assert "10485760 bytes" in report.refused["acme_bomb.zip"]
    assert "20 members" in report.refused["acme_many.zip"]
    assert _files(landing) == []
