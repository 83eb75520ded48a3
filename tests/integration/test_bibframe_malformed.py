"""A malformed BIBFRAME delivery is an input error at fetch: named, located, nothing landed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.test_delivery_https import PASSWORD, USER, FeedServer, _serve

from catalog_sync.bibframe import BibframeFileError, convert_bibframe
from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.delivery import fetch_https
from catalog_sync.delivery.models import DeliveryReport
from catalog_sync.marc.errors import CatalogSyncInputError
from catalog_sync.paths import layout
from catalog_sync.pipeline.fetch import fetch_deliveries

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL = FIXTURES / "bibframe" / "regression-bibframe.xml"
GOOD_MARC = FIXTURES / "bibframe" / "regression-marc.xml"
LOCATED = re.compile(r"line \d+, column \d+")


def truncated(dest: Path) -> Path:
    """The LoC regression record cut off mid-document, as an interrupted export leaves it."""
    data = REAL.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def test_a_truncated_bibframe_file_is_refused_with_its_name_and_position(tmp_path: Path) -> None:
    bad = truncated(tmp_path / "delivery.rdf")
    with pytest.raises(BibframeFileError) as info:
        convert_bibframe(bad, tmp_path / "out.xml")
    # The fetch task fails input errors at once (AirflowFailException), never by retrying.
    assert isinstance(info.value, CatalogSyncInputError)
    assert "delivery.rdf" in str(info.value)
    assert LOCATED.search(str(info.value)), str(info.value)
    assert "Traceback" not in str(info.value)
    assert not (tmp_path / "out.xml").exists()


def demo_vendor() -> VendorConfig:
    return load_vendors()["demo"]


def test_fetch_refuses_a_malformed_bibframe_delivery_before_landing_anything(
    tmp_path: Path,
) -> None:
    home = layout(tmp_path / "home")
    vendor = demo_vendor()
    inbox = vendor.inbox_path(home.root)
    inbox.mkdir(parents=True)
    shutil.copy(GOOD_MARC, inbox / "a-good.xml")  # a sound file beside it must not land either
    truncated(inbox / "b-broken.rdf")
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")

    with pytest.raises(CatalogSyncInputError) as info:
        fetch_deliveries(vendor, home, state, force=True)

    message = str(info.value)
    assert "b-broken.rdf" in message
    assert LOCATED.search(message), message
    assert not home.landing.exists() or not any(home.landing.rglob("*"))


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    yield from _serve()


def test_a_malformed_bibframe_file_from_an_https_feed_leaves_nothing_landed(
    feed: FeedServer, tmp_path: Path
) -> None:
    feed.publish("a-good.xml", GOOD_MARC.read_bytes())
    feed.publish("b-broken.rdf", truncated(tmp_path / "cut.rdf").read_bytes())
    home = layout(tmp_path / "home")
    vendor = demo_vendor()
    vendor = vendor.model_copy(
        update={"source": vendor.source.model_copy(update={"kind": "https"})}
    )
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")

    def remote(landing: Path, archive: Path, loaded: Callable[[str, str], bool]) -> DeliveryReport:
        return fetch_https(
            feed.url, landing_dir=landing, archive_dir=archive, username=USER, password=PASSWORD,
            patterns=["*.xml", "*.rdf"], already_loaded=loaded, stable_seconds=0,
            sleep=lambda _s: None,
        )  # fmt: skip

    with pytest.raises(CatalogSyncInputError) as info:
        fetch_deliveries(vendor, home, state, force=True, remote=remote)

    assert "b-broken.rdf" in str(info.value)
    assert LOCATED.search(str(info.value)), str(info.value)
    # The transport lands before content can be read; the refusal takes both files back out.
    assert not home.landing.exists() or not [p for p in home.landing.rglob("*") if p.is_file()]
