"""The delivery safety settings a vendor may give in vendors.yaml: origins and unpack bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog_sync.config import load_vendors
from catalog_sync.delivery.fetch import FetchPolicy
from catalog_sync.delivery.safety import MAX_NAME_BYTES, UnpackLimits, name_problem

VENDORS = """
vendors:
  acme:
    source:
      kind: https
      delivery:
        kind: https
        conn_id: acme_feed
        url: https://feed.acme.example/exports/
        allowed_origins: ["https://CDN.acme.example", "http://mirror.acme.example:8080/"]
        max_unpacked_bytes: 1000000
        max_unpacked_members: 5
"""


def test_a_vendor_sets_its_allowed_origins_and_unpack_bounds(tmp_path: Path) -> None:
    path = tmp_path / "vendors.yaml"
    path.write_text(VENDORS, encoding="utf-8")
    source = load_vendors(path)["acme"].source.delivery
    assert source is not None
    assert source.allowed_origins == [
        "https://cdn.acme.example:443",
        "http://mirror.acme.example:8080",
    ]
    assert FetchPolicy.from_source(source).unpack_limits == UnpackLimits(1_000_000, 5)


def test_unset_bounds_fall_back_to_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "vendors.yaml"
    path.write_text(VENDORS.split("        allowed_origins")[0], encoding="utf-8")
    source = load_vendors(path)["acme"].source.delivery
    assert source is not None and source.allowed_origins == []
    assert source.unpack_limits == UnpackLimits()


@pytest.mark.parametrize(
    "origin", ["ftp://cdn.acme.example", "https://cdn.acme.example/files/", "cdn.acme.example"]
)
def test_an_allowed_origin_must_be_an_http_origin_without_a_path(
    tmp_path: Path, origin: str
) -> None:
    path = tmp_path / "vendors.yaml"
    path.write_text(VENDORS.replace('"https://CDN.acme.example"', f'"{origin}"'), "utf-8")
    with pytest.raises(ValidationError, match="allowed_origins"):
        load_vendors(path)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/b.mrc", "a\\b.mrc", ".hidden.mrc", "-rf.mrc", "a\x00b.mrc", "a\nb.mrc",
     "é" * (MAX_NAME_BYTES // 2 + 1)],
)  # fmt: skip
def test_names_that_are_not_a_plain_base_name_are_refused(name: str) -> None:
    assert (name_problem(name) or "").startswith("unsafe name")


@pytest.mark.parametrize("name", ["acme_20261128.mrc", "Ünïcode export.xml", "a..b.mrc"])
def test_plain_base_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None
