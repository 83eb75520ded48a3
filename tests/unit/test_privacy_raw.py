"""Masking raw ISO 2709 for reject files, including records pymarc cannot parse."""

from __future__ import annotations

import io
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from pymarc import Leader, MARCReader, Record
from tests.privacy_canaries import plant_canaries

from catalog_sync.privacy import Masker, PiiPolicy, load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"
RT, FT = b"\x1d", b"\x1e"


@pytest.fixture(scope="module")
def policy() -> PiiPolicy:
    return load_policy()


@pytest.fixture
def masker(policy: PiiPolicy) -> Masker:
    return Masker(policy, secrets.token_bytes(32))


def read(data: bytes) -> list[Record | None]:
    return list(MARCReader(io.BytesIO(data), to_unicode=True, permissive=True))


def utf8_marc(record: Record) -> bytes:
    leader = str(record.leader)
    record.leader = Leader(leader[:9] + "a" + leader[10:])
    return record.as_marc()


def planted_raw(policy: PiiPolicy, name: str) -> tuple[list[bytes], list[str]]:
    with (FIXTURES / name).open("rb") as fh:
        records = [r for r in MARCReader(fh, to_unicode=True, permissive=True) if r is not None]
    planted, canaries = plant_canaries(records, policy)
    return [utf8_marc(r) for r in planted], list(canaries)


def leaks(data: bytes, canaries: list[str]) -> list[str]:
    return [c for c in canaries if c.encode() in data]


def test_raw_masking_of_parseable_records_matches_record_masking(
    masker: Masker, policy: PiiPolicy
) -> None:
    raws, canaries = planted_raw(policy, "loc_acquisition_provenance.mrc")
    for raw in raws:
        assert leaks(raw, canaries)
        masked_raw = masker.mask_raw_iso2709(raw)
        assert leaks(masked_raw, canaries) == []
        (from_raw,) = read(masked_raw)
        (parsed,) = read(raw)
        assert from_raw is not None and parsed is not None
        assert from_raw.as_marc() == masker.mask_record(parsed).as_marc()


def corrupt_base_address(raw: bytes) -> bytes:
    return raw[:12] + b"99937" + raw[17:]


def corrupt_directory_offsets(raw: bytes) -> bytes:
    # Shift the start offset of the third directory entry: fields no longer land on terminators.
    entry = 24 + 2 * 12
    start = int(raw[entry + 7 : entry + 12]) + 3
    return raw[: entry + 7] + b"%05d" % start + raw[entry + 12 :]


def truncate(raw: bytes) -> bytes:
    return raw[: len(raw) * 2 // 3]


def garble_directory(raw: bytes) -> bytes:
    return raw[:24] + b"X" + raw[25:]


@pytest.mark.parametrize(
    "corrupt", [corrupt_base_address, corrupt_directory_offsets, truncate, garble_directory]
)
def test_unparseable_records_still_lose_every_canary(
    masker: Masker, policy: PiiPolicy, corrupt: Callable[[bytes], bytes]
) -> None:
    raws, canaries = planted_raw(policy, "loc_acquisition_provenance.mrc")
    broken = b"".join(corrupt(raw) for raw in raws)
    assert leaks(broken, canaries)
    masked = masker.mask_raw_iso2709(broken)
    assert leaks(masked, canaries) == []
    assert masked.count(RT) == broken.count(RT)


def test_fields_taken_in_directory_order_keep_the_record_readable_but_masked(
    masker: Masker, policy: PiiPolicy
) -> None:
    raws, canaries = planted_raw(policy, "loc_acquisition_provenance.mrc")
    broken = corrupt_directory_offsets(raws[3])
    masked = masker.mask_raw_iso2709(broken)
    assert leaks(masked, canaries) == []
    # The structural fault is kept as received (same leader and directory) ...
    directory_end = broken.index(FT)
    assert masked[:directory_end] == broken[:directory_end]
    # ... and public description (the title) is still there for the operator.
    (parsed,) = read(raws[3])
    assert parsed is not None and parsed.title
    assert parsed["245"]["a"].encode() in masked


def test_pymarcs_own_broken_records_keep_their_faults_and_lose_an_email(
    masker: Masker,
) -> None:
    data = (FIXTURES / "bad_records.mrc").read_bytes()
    email = b"qzcanary.0001@example.org."
    assert len(email) == len(b"Andrew Hunt, David Thomas.")
    planted = data.replace(b"Andrew Hunt, David Thomas.", email)
    assert sum(r is None for r in read(planted)) >= 5

    masked = masker.mask_raw_iso2709(planted)
    assert email not in masked
    assert masked.count(RT) == planted.count(RT)
    records_in, records_out = planted.split(RT), masked.split(RT)
    for before, after in zip(records_in, records_out, strict=True):
        # Lengths may be recomputed when a value was masked; the coded leader bytes stay.
        assert (after[5:12], after[17:24]) == (before[5:12], before[17:24])
        # A record whose fields could be found keeps its public title.
        if b"[redacted]" not in after and b"The pragmatic programmer" in before:
            assert b"The pragmatic programmer" in after
    assert masker.counts["scrub:email"] >= 1
    assert masker.counts["raw:unknown-structure"] >= 1


def test_records_with_nothing_to_mask_come_back_byte_for_byte(masker: Masker) -> None:
    data = (FIXTURES / "bad_records.mrc").read_bytes()
    masked = masker.mask_raw_iso2709(data)
    kept = [a for a, b in zip(data.split(RT), masked.split(RT), strict=True) if a == b]
    # All but the two with an unreadable directory: a base-address fault survives as it came.
    assert len(kept) == data.count(RT) + 1 - 2


def test_bytes_of_unknown_structure_are_redacted_whole(masker: Masker) -> None:
    data = b"Patron 21234567890123 wrote to jane@example.org about it" + RT + b"\n"
    masked = masker.mask_raw_iso2709(data)
    assert masked == b"[redacted]" + RT + b"\n"


def test_marc8_vendor_records_keep_every_unmasked_byte(masker: Masker) -> None:
    data = (FIXTURES / "vendor_shelfready_priced_9xx.mrc").read_bytes()
    masked = masker.mask_raw_iso2709(data)
    before = [r for r in read(data) if r is not None]
    after = [r for r in read(masked) if r is not None]
    assert len(after) == len(before) == 3
    for original, copy in zip(before, after, strict=True):
        assert copy.title == original.title
        assert copy["960"]["s"].startswith("hmac:") and copy["960"]["z"] == "GBP"
        for code in "abdef":
            assert copy["980"][code].startswith("hmac:")
            assert copy["980"][code] != original["980"][code]
        assert str(copy["245"]) == str(original["245"])
