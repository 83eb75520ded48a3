"""SFTP delivery against a real asyncssh server on loopback, with a generated host key."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import asyncssh
import pytest
from tests.integration.test_delivery_https import escaped_beside
from tests.sftp_server import PASSWORD, USER, SftpServer

from catalog_sync.delivery import (
    DeliveryAuthError,
    DeliveryHostKeyError,
    DeliveryNotFoundError,
    DeliveryUnavailableError,
    fetch_sftp,
    purge_archive,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "delivery"
DAY = 86400.0


class Sleeps:
    """Stands in for time.sleep: records waits, and can act between two looks."""

    def __init__(self, between_looks: list[object] | None = None) -> None:
        self.calls: list[float] = []
        self.actions = list(between_looks or [])

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.actions:
            action = self.actions.pop(0)
            if callable(action):
                action()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _put(root: Path, fixture: str, name: str | None = None, age_days: float = 0) -> Path:
    dest = root / (name or fixture)
    shutil.copyfile(FIXTURES / fixture, dest)
    if age_days:
        old = time.time() - age_days * DAY
        os.utime(dest, (old, old))
    return dest


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


def test_new_files_are_fetched_and_old_loaded_empty_or_unmatched_ones_are_not(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    root = sftp_server.state.root
    _put(root, "one.mrc", "acme_20261128.mrc")
    _put(root, "multi_isbn.mrc", "acme_20261001.mrc", age_days=58)
    _put(root, "test_data.utf8.mrc", "acme_20261127.mrc")
    (root / "acme_20261126.mrc").write_bytes(b"")
    (root / "README.txt").write_text("not a delivery")
    loaded_sha = _sha(FIXTURES / "test_data.utf8.mrc")
    asked: list[tuple[str, str]] = []

    def already_loaded(name: str, sha256: str) -> bool:
        asked.append((name, sha256))
        return sha256 == loaded_sha

    report = fetch_sftp(
        sftp_server.login(),
        "/",
        landing_dir=tmp_path / "landing",
        archive_dir=tmp_path / "archive",
        patterns=["*.mrc"],
        already_loaded=already_loaded,
        lookback_seconds=7 * DAY,
        stable_seconds=5,
        sleep=Sleeps(),
    )

    (fetched,) = report.fetched
    assert fetched.name == "acme_20261128.mrc"
    assert fetched.sha256 == _sha(FIXTURES / "one.mrc")
    assert fetched.path == tmp_path / "landing" / fetched.sha256 / "acme_20261128.mrc"
    assert fetched.path.read_bytes() == (FIXTURES / "one.mrc").read_bytes()
    assert report.too_old == ["acme_20261001.mrc"]
    assert report.already_loaded == ["acme_20261127.mrc"]
    assert report.empty == ["acme_20261126.mrc"]
    assert ("acme_20261127.mrc", loaded_sha) in asked
    # Every fetched delivery is archived under its hash, with a sha256sum sidecar.
    assert fetched.archived_to.name == f"{fetched.sha256}__acme_20261128.mrc"
    assert fetched.archived_to.read_bytes() == fetched.path.read_bytes()
    sidecar = fetched.archived_to.with_name(fetched.archived_to.name + ".sha256")
    assert sidecar.read_text() == f"{fetched.sha256}  acme_20261128.mrc\n"
    assert _files(tmp_path / "landing") == [fetched.path]


def test_a_gz_delivery_is_unpacked_and_its_member_checked_against_loaded_files(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    _put(sftp_server.state.root, "test_data.utf8.mrc.gz", "acme_full.mrc.gz")
    landing = tmp_path / "landing"
    report = fetch_sftp(
        sftp_server.login(), ".", landing_dir=landing, archive_dir=tmp_path / "archive",
        patterns=["*.gz"], stable_seconds=0, sleep=Sleeps(),
    )  # fmt: skip
    (member,) = report.fetched
    assert member.name == "acme_full.mrc"
    assert member.delivered_as == "acme_full.mrc.gz"
    assert member.sha256 == _sha(FIXTURES / "test_data.utf8.mrc")
    assert member.delivery_sha256 == _sha(FIXTURES / "test_data.utf8.mrc.gz")
    assert _files(landing) == [member.path]  # the packed file lives on only in the archive
    assert member.archived_to.read_bytes() == (FIXTURES / "test_data.utf8.mrc.gz").read_bytes()

    again = fetch_sftp(
        sftp_server.login(), ".", landing_dir=tmp_path / "landing2",
        archive_dir=tmp_path / "archive", patterns=["*.gz"], stable_seconds=0, sleep=Sleeps(),
        already_loaded=lambda name, sha: sha == member.sha256,
    )  # fmt: skip
    assert again.fetched == [] and again.already_loaded == ["acme_full.mrc.gz:acme_full.mrc"]


def test_a_partial_upload_is_waited_for_until_its_size_is_stable(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    full = (FIXTURES / "test_data.utf8.mrc").read_bytes()
    upload = sftp_server.state.root / "acme_growing.mrc"
    upload.write_bytes(full[:10000])

    def vendor_finishes_upload() -> None:
        with upload.open("ab") as out:
            out.write(full[10000:])

    sleeps = Sleeps(between_looks=[vendor_finishes_upload])
    report = fetch_sftp(
        sftp_server.login(), "/", landing_dir=tmp_path / "landing",
        archive_dir=tmp_path / "archive", patterns=["*.mrc"], stable_seconds=30,
        max_looks=3, sleep=sleeps,
    )  # fmt: skip
    assert sleeps.calls == [30, 30]  # grew between looks 1 and 2, stable between 2 and 3
    (fetched,) = report.fetched
    assert fetched.path.read_bytes() == full
    assert report.pending == []


def test_an_upload_still_growing_after_the_last_look_is_left_pending(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    upload = sftp_server.state.root / "acme_slow.mrc"
    upload.write_bytes(b"x" * 100)

    def grow() -> None:
        with upload.open("ab") as out:
            out.write(b"x" * 100)

    report = fetch_sftp(
        sftp_server.login(), "/", landing_dir=tmp_path / "landing",
        archive_dir=tmp_path / "archive", patterns=["*.mrc"], stable_seconds=30, max_looks=3,
        sleep=Sleeps(between_looks=[grow, grow]),
    )  # fmt: skip
    assert report.fetched == [] and report.pending == ["acme_slow.mrc"]
    assert _files(tmp_path / "landing") == []


def test_a_vendor_done_marker_decides_which_files_are_complete(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    root = sftp_server.state.root
    _put(root, "one.mrc", "ready.mrc")
    (root / "ready.mrc.done").write_text("")
    _put(root, "multi_isbn.mrc", "uploading.mrc")
    sleeps = Sleeps()
    report = fetch_sftp(
        sftp_server.login(), "/", landing_dir=tmp_path / "landing",
        archive_dir=tmp_path / "archive", patterns=["*.mrc"], done_marker_suffix=".done",
        sleep=sleeps,
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["ready.mrc"]
    assert report.pending == ["uploading.mrc"]
    assert sleeps.calls == []  # with a marker there is nothing to wait for


def test_a_connection_dropped_mid_download_is_retried_without_a_corrupt_landing_file(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    _put(sftp_server.state.root, "test_data.utf8.mrc", "acme_big.mrc")
    sftp_server.state.drops_left = 1
    landing = tmp_path / "landing"
    report = fetch_sftp(
        sftp_server.login(), "/", landing_dir=landing, archive_dir=tmp_path / "archive",
        patterns=["*.mrc"], stable_seconds=0, attempts=3, retry_wait_seconds=1, sleep=Sleeps(),
    )  # fmt: skip
    assert sftp_server.state.dropped_files  # the fault really happened mid-file
    (fetched,) = report.fetched
    assert report.attempts == {"acme_big.mrc": 2}
    assert fetched.path.read_bytes() == (FIXTURES / "test_data.utf8.mrc").read_bytes()
    assert _files(landing) == [fetched.path]  # no .partial left behind


def test_drops_on_every_attempt_end_unavailable_with_nothing_landed(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    _put(sftp_server.state.root, "test_data.utf8.mrc", "acme_big.mrc")
    sftp_server.state.drops_left = 10
    landing = tmp_path / "landing"
    with pytest.raises(DeliveryUnavailableError, match=r"acme_big\.mrc") as caught:
        fetch_sftp(
            sftp_server.login(), "/", landing_dir=landing, archive_dir=tmp_path / "archive",
            patterns=["*.mrc"], stable_seconds=0, attempts=2, retry_wait_seconds=1,
            sleep=Sleeps(),
        )  # fmt: skip
    assert "2 attempts" in str(caught.value)
    assert _files(landing) == [] and _files(tmp_path / "archive") == []


def test_wrong_credentials_end_at_once_with_a_clear_message(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    _put(sftp_server.state.root, "one.mrc")
    sleeps = Sleeps()
    with pytest.raises(DeliveryAuthError) as caught:
        fetch_sftp(
            sftp_server.login(password="wrong-password-123"), "/",
            landing_dir=tmp_path / "landing", archive_dir=tmp_path / "archive",
            attempts=5, sleep=sleeps,
        )  # fmt: skip
    message = str(caught.value)
    assert USER in message and f"127.0.0.1:{sftp_server.port}" in message
    assert "wrong-password-123" not in message and PASSWORD not in message
    assert caught.value.reason == "auth_failed"
    assert sftp_server.state.connections == 1 and sleeps.calls == []  # no retry


def test_a_server_whose_host_key_is_not_the_known_one_is_refused(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    wrong = tmp_path / "known_hosts_other"
    wrong.write_text(f"[127.0.0.1]:{sftp_server.port} {other[0]} {other[1]}\n")
    with pytest.raises(DeliveryHostKeyError):
        fetch_sftp(
            sftp_server.login(known_hosts=wrong), "/", landing_dir=tmp_path / "landing",
            archive_dir=tmp_path / "archive", sleep=Sleeps(),
        )  # fmt: skip
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    with pytest.raises(DeliveryHostKeyError, match="not in known_hosts"):
        fetch_sftp(
            sftp_server.login(known_hosts=empty), "/", landing_dir=tmp_path / "landing",
            archive_dir=tmp_path / "archive", sleep=Sleeps(),
        )  # fmt: skip
    assert sftp_server.state.auth_attempts == 0  # no password was ever sent


def test_purge_archive_removes_deliveries_past_their_retention(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    _put(sftp_server.state.root, "one.mrc")
    _put(sftp_server.state.root, "multi_isbn.mrc")
    archive = tmp_path / "archive"
    report = fetch_sftp(
        sftp_server.login(), "/", landing_dir=tmp_path / "landing", archive_dir=archive,
        patterns=["*.mrc"], stable_seconds=0, sleep=Sleeps(),
    )  # fmt: skip
    old, recent = sorted((f.archived_to for f in report.fetched), key=lambda p: p.name)
    long_ago = time.time() - 100 * DAY
    os.utime(old, (long_ago, long_ago))
    assert purge_archive(archive, older_than_days=90) == [old]
    assert _files(archive) == sorted([recent, recent.with_name(recent.name + ".sha256")])


def test_a_missing_remote_folder_is_reported_at_once(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    sleeps = Sleeps()
    with pytest.raises(DeliveryNotFoundError, match="no such remote folder"):
        fetch_sftp(
            sftp_server.login(), "/outgoing/acme", landing_dir=tmp_path / "landing",
            archive_dir=tmp_path / "archive", attempts=3, sleep=sleeps,
        )  # fmt: skip
    assert sleeps.calls == []  # not a transient error: no retry


def test_a_listing_with_unsafe_names_has_them_refused_and_nothing_lands_outside(
    sftp_server: SftpServer, tmp_path: Path
) -> None:
    root = sftp_server.state.root
    _put(root, "one.mrc", "acme_20261128.mrc")
    hostile = {
        "evil1.mrc": b"../../escaped.mrc",
        "evil2.mrc": b"sub/../../../escaped.mrc",
        "evil4.mrc": b"nul\x00escaped.mrc",
        "evil5.mrc": ("a" * 300 + ".mrc").encode(),
    }
    for on_disk, listed in hostile.items():
        _put(root, "multi_isbn.mrc", on_disk)
        sftp_server.state.listed_as[on_disk] = listed
    # Names a file system holds but that are refused all the same.
    _put(root, "multi_isbn.mrc", "..\\..\\escaped.mrc")
    _put(root, "multi_isbn.mrc", ".escaped.mrc")
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    report = fetch_sftp(
        sftp_server.login(), ".", landing_dir=landing, archive_dir=archive, stable_seconds=0,
        max_looks=2, sleep=Sleeps(),
    )  # fmt: skip
    assert [f.name for f in report.fetched] == ["acme_20261128.mrc"]
    expected = [n.decode() for n in hostile.values()] + ["..\\..\\escaped.mrc", ".escaped.mrc"]
    assert sorted(report.refused) == sorted(expected)
    assert all(reason.startswith("unsafe name") for reason in report.refused.values())
    assert escaped_beside(tmp_path) == []
    assert _files(tmp_path) == sorted(
        [*_files(landing), *_files(archive), *_files(root), sftp_server.known_hosts]
    )
