"""Masking real records: policy fields never leave in plain text, the original keeps them."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from pymarc import Field, Leader, MARCReader, Record
from pymarc.field import Indicators, Subfield
from tests.privacy_canaries import Canaries, plant_canaries

from catalog_sync.privacy import Masker, MaskingKeyError, PiiPolicy, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"
RECORD_FILES = [
    "loc_acquisition_provenance.mrc",
    "vendor_shelfready_priced_9xx.mrc",
    "vendor_approval_9xx.mrc",
    "koha_952_item.mrc",
    "oclc_938_vendor_price.mrc",
    "sirsi_999_item_price.mrc",
]
HASH = re.compile(r"hmac:[0-9a-f]{16}")


def read_records(name: str) -> list[Record]:
    with (FIXTURES / name).open("rb") as fh:
        return [r for r in MARCReader(fh, to_unicode=True, permissive=True) if r is not None]


def all_text(record: Record) -> str:
    """Every value of the record (leader, control data, indicators, subfields) as one string."""
    parts = [str(record.leader)]
    for field in record.fields:
        if field.is_control_field():
            parts.append(field.data or "")
        else:
            parts.append("".join(field.indicators or ()))
            parts.extend(f"${code}{value}" for code, value in field.subfields)
    return "\n".join(parts)


def as_utf8_marc(record: Record) -> bytes:
    leader = str(record.leader)
    record.leader = Leader(leader[:9] + "a" + leader[10:])
    return record.as_marc()


@pytest.fixture(scope="module")
def policy() -> PiiPolicy:
    return load_policy()


@pytest.fixture
def masker(policy: PiiPolicy) -> Masker:
    return Masker(policy, secrets.token_bytes(32))


@pytest.fixture(scope="module")
def planted(policy: PiiPolicy) -> tuple[list[Record], Canaries]:
    records = [r for name in RECORD_FILES for r in read_records(name)]
    return plant_canaries(records, policy)


def leaked(text: str | bytes, canaries: list[str]) -> list[str]:
    blob = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return [c for c in canaries if c in blob]


def test_masked_copies_of_real_records_hold_no_canary_while_originals_keep_them(
    masker: Masker, planted: tuple[list[Record], Canaries]
) -> None:
    records, canaries = planted
    before = [all_text(r) for r in records]
    masked = [masker.mask_record(r) for r in records]

    for original, copy, text_before in zip(records, masked, before, strict=True):
        assert leaked(all_text(copy), canaries) == []
        assert leaked(as_utf8_marc(copy), canaries) == []
        assert all_text(original) == text_before
    originals = "\n".join(before)
    assert leaked(originals, canaries) == canaries


def test_every_policy_rule_masks_its_planted_values(
    masker: Masker, planted: tuple[list[Record], Canaries], policy: PiiPolicy
) -> None:
    records, canaries = planted
    for record in records:
        masker.mask_record(record)
    counts = masker.counts
    for rule in policy.fields:
        assert counts.get(rule.rule, 0) >= len(canaries.by_rule[rule.rule])
    assert counts["scrub:email"] == len(canaries.by_rule["scrub:email"])
    assert counts["scrub:patron-barcode"] == len(canaries.by_rule["scrub:patron-barcode"])


def test_hash_is_keyed_hmac_prefix_stable_for_one_key_and_different_across_keys(
    policy: PiiPolicy,
) -> None:
    record = read_records("vendor_shelfready_priced_9xx.mrc")[0]
    price = record["960"]["s"]
    one, same, other = (
        Masker(policy, b"k" * 32),
        Masker(policy, "k" * 32),
        Masker(policy, b"j" * 32),
    )
    hashed = one.mask_record(record)["960"]["s"]
    assert HASH.fullmatch(hashed)
    assert price not in hashed
    assert same.mask_record(record)["960"]["s"] == hashed
    assert other.mask_record(record)["960"]["s"] != hashed


@pytest.mark.parametrize("key", [None, "", b"", "   "])
def test_empty_key_is_refused(policy: PiiPolicy, key: str | bytes | None) -> None:
    with pytest.raises(MaskingKeyError) as err:
        Masker(policy, key)
    assert err.value.reason == "pii_key_missing"


def test_the_key_is_not_kept_in_attributes_or_shown_in_repr(policy: PiiPolicy) -> None:
    key = "s3cret-" + secrets.token_hex(16)
    masker = Masker(policy, key)
    assert key not in repr(masker)
    assert all(key not in repr(v) and key.encode() != v for v in vars(masker).values())


def test_provenance_is_redacted_unless_marked_not_private_and_880_copies_follow(
    masker: Masker,
) -> None:
    records = {r["001"].data: r for r in read_records("loc_acquisition_provenance.mrc")}
    with_561 = [r for r in records.values() if r.get_fields("561")]
    assert with_561
    for record in with_561:
        masked = masker.mask_record(record)
        for field in masked.get_fields("561"):
            assert field["a"] == "[redacted]"
        for field in masked.get_fields("880"):
            if field["6"].startswith("561"):
                assert field["a"] == "[redacted]"

    not_private = Record()
    not_private.add_field(
        Field("561", Indicators("1", " "), [Subfield("a", "From the library of the city.")])
    )
    assert masker.mask_record(not_private)["561"]["a"] == "From the library of the city."


def test_541_is_masked_whatever_its_privacy_indicator(masker: Masker) -> None:
    records = read_records("loc_acquisition_provenance.mrc")
    indicators = set()
    for record in records:
        masked = masker.mask_record(record)
        for original, copy in zip(record.get_fields("541"), masked.get_fields("541"), strict=True):
            assert original.indicators is not None
            indicators.add(original.indicators[0])
            for code in "acdefh":
                for value in copy.get_subfields(code):
                    assert HASH.fullmatch(value)
    assert {" ", "0", "1"} <= indicators


def test_dropped_subfields_vanish_and_a_field_left_empty_is_left_out(masker: Masker) -> None:
    record = Record()
    record.add_field(
        Field("245", Indicators("0", "0"), [Subfield("a", "A title")]),
        Field("541", Indicators("0", " "), [Subfield("b", "12 Elm St"), Subfield("a", "Donor")]),
        Field("541", Indicators("0", " "), [Subfield("b", "3 Oak Rd")]),
    )
    masked = masker.mask_record(record)
    fields_541 = masked.get_fields("541")
    assert len(fields_541) == 1
    assert fields_541[0].get_subfields("b") == []
    assert masker.counts["acq-address"] == 2


def test_editing_the_masked_copy_never_reaches_the_original(masker: Masker) -> None:
    record = read_records("loc_acquisition_provenance.mrc")[0]
    snapshot = record.as_marc()
    copy = masker.mask_record(record)
    for field in copy.fields:
        if field.is_control_field():
            field.data = "changed"
        else:
            field.subfields.append(Subfield("z", "changed"))
            field.indicators = Indicators("9", "9")
    leader = str(copy.leader)
    copy.leader = Leader(leader[:5] + "d" + leader[6:])
    assert record.as_marc() == snapshot


def test_shared_copy_masks_the_same_values(
    masker: Masker, planted: tuple[list[Record], Canaries]
) -> None:
    records, canaries = planted
    for record in records:
        full = masker.mask_record(record)
        shared = masker.mask_record(record, share_unchanged=True)
        assert all_text(shared) == all_text(full)
        assert leaked(all_text(shared), canaries) == []


def test_public_description_is_left_alone(masker: Masker) -> None:
    for record in read_records("loc_acquisition_provenance.mrc"):
        masked = masker.mask_record(record)
        assert masked.title == record.title
        assert masked["001"].data == record["001"].data
        assert masked["005"].data == record["005"].data
        assert str(masked.leader) == str(record.leader)


def test_non_numeric_local_tags_are_masked_without_error(masker: Masker) -> None:
    record = Record()
    record.add_field(Field("FMT", Indicators(" ", " "), [Subfield("a", "BK a@b.example.com")]))
    assert masker.mask_record(record)["FMT"]["a"] == "BK a@b.example.com"
    strict = Masker(load_policy().model_copy(update={"scrub_record_tags": ("XXX",)}), b"k" * 32)
    assert strict.mask_record(record)["FMT"]["a"] == "BK [email]"
