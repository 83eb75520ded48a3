"""What a vendor asks of its ILS is checked when vendors.yaml loads, naming what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from catalog_sync.config import load_vendors

NO_PRICES = {"purchase_price": None, "replacement_price": None, "public_notes": None}


def write(tmp_path: Path, vendor: dict[str, object], flavour: str | None) -> Path:
    conn: dict[str, object] = {"pool_slots": 2}
    if flavour is not None:
        conn["flavour"] = flavour
    body = {
        "vendors": {"acme": {"source": {"inbox": "inbox/acme"}, "ils_conn_id": "ils_x", **vendor}},
        "ils_connections": {"ils_x": conn},
    }
    path = tmp_path / "vendors.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


@pytest.mark.parametrize("point", ["hrid", "oclc"])
@pytest.mark.parametrize("flavour", ["koha", None])  # a connection without flavour is Koha
def test_a_koha_vendor_naming_a_point_koha_cannot_search_is_refused(
    tmp_path: Path, point: str, flavour: str | None
) -> None:
    path = write(tmp_path, {"match_points": ["020", point]}, flavour)
    with pytest.raises(ValueError, match=rf"acme.*koha.*cannot search.*'{point}'"):
        load_vendors(path)


def test_a_folio_vendor_matches_by_hrid_and_oclc(tmp_path: Path) -> None:
    vendor = {"match_points": ["hrid", "oclc", "020"], "items": NO_PRICES}
    loaded = load_vendors(write(tmp_path, vendor, "folio"))["acme"]
    assert loaded.match_points == ["hrid", "oclc", "020"]


def test_a_folio_vendor_mapping_item_prices_is_refused(tmp_path: Path) -> None:
    # The default item mapping maps Koha's prices, which a FOLIO item has no place for.
    with pytest.raises(ValueError, match=r"acme.*folio.*purchase_price"):
        load_vendors(write(tmp_path, {}, "folio"))


def test_a_koha_vendor_cannot_give_a_folio_loan_type(tmp_path: Path) -> None:
    vendor = {"items": {"default_loan_type": "Can circulate"}}
    with pytest.raises(ValueError, match=r"acme.*loan_type"):
        load_vendors(write(tmp_path, vendor, "koha"))
