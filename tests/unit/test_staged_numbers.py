"""process_chunk stages each create's searchable numbers for the commit's batched match
searches: the numbers match_numbers would read from the record, and none a PII policy masks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pymarc
import pytest
from tests.privacy_canaries import find_canaries, plant_canaries, write_records

from catalog_sync.changes.identifiers import (
    numbers_from_sources,
    record_identifiers,
    searchable_numbers,
)
from catalog_sync.changes.matching import SEARCHABLE, match_numbers, numbers_for_points
from catalog_sync.changes.state import StateStore, idempotency_key
from catalog_sync.config import load_vendors
from catalog_sync.marc.landing import describe_landing
from catalog_sync.marc.prepare import PreparedRecord, prepare_record
from catalog_sync.marc.reader import RawRecord, read_record_at
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChangeAction, ChunkRef, StagedChange
from catalog_sync.paths import RuntimeLayout
from catalog_sync.pipeline.process import process_chunk, read_staged
from catalog_sync.privacy import Masker, PiiPolicy, load_policy

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
VENDOR = load_vendors()["demo"]
# Every point a match can search, in an order unlike SEARCHABLE's own.
ALL_POINTS = ["hrid", "010", "oclc", "022", "020"]


def stage(
    tmp_path: Path, run_id: str, masker: Masker | None = None
) -> tuple[ChunkRef, list[StagedChange]]:
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    [ref] = split_file(describe_landing(SAMPLE, VENDOR.name), records_per_chunk=1000)
    report = process_chunk(ref, VENDOR, RuntimeLayout(tmp_path), state, run_id, masker)
    return ref, read_staged(report.staging_path)


def reread(ref: ChunkRef, change: StagedChange) -> PreparedRecord:
    raw = RawRecord(change.offset, read_record_at(ref.file_path, change.offset, change.length), -1)
    prepared = prepare_record(raw, ref.format, VENDOR)
    assert isinstance(prepared, PreparedRecord)
    return prepared


def test_a_creates_staged_numbers_are_what_matching_reads_from_the_record(
    tmp_path: Path,
) -> None:
    ref, staged = stage(tmp_path, "run-1")
    assert len(staged) == 1000 and {c.action for c in staged} == {ChangeAction.CREATE}
    kinds = set()
    for change in staged:
        assert change.number_sources is not None
        record = reread(ref, change).record
        numbers = numbers_from_sources(change.number_sources)
        assert (
            numbers
            == searchable_numbers(record)
            == {**record_identifiers(record), "hrid": numbers["hrid"]}
        )
        # Whatever points the vendor has at commit, not only those it had when staging.
        for points in (ALL_POINTS, VENDOR.match_points, ["035", "001+003", "oclc"], []):
            assert numbers_for_points(numbers, points) == match_numbers(record, points)
        kinds.update(index for index, values in numbers.items() if values)
    # The sample exercises more than one index (every LoC record has an LCCN and a 001).
    assert {"lccn", "hrid", "isbn"} <= kinds <= set(SEARCHABLE.values())


def test_only_creates_carry_numbers(tmp_path: Path) -> None:
    ref, first = stage(tmp_path, "run-1")
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    # As if the first run had written two of them: the next delivery leaves them unchanged.
    for change in first[:2]:
        fields = {
            "ils": VENDOR.ils_conn_id,
            "record_key": change.record_key,
            "fingerprint": change.fingerprint,
            "action": "create",
        }
        key = idempotency_key(VENDOR.ils_conn_id, change.record_key, change.fingerprint, "create")
        state.record_pending(key, run_id="run-1", chunk_id=ref.chunk_id, ils_id=None, **fields)
        state.record_applied(key, ils_id="1", run_id="run-1", **fields)

    _, again = stage(tmp_path, "run-2")

    actions = [(c.action, c.number_sources is not None) for c in again]
    assert actions[:2] == [(ChangeAction.UNCHANGED, False)] * 2
    assert set(actions[2:]) == {(ChangeAction.CREATE, True)}


def masking(tag: str, code: str) -> PiiPolicy:
    policy = load_policy()
    rule = {"rule": "site-isbn", "tag": tag, "subfields": [code], "action": "hash"}
    fields = [r.model_dump(by_alias=True) for r in policy.fields] + [rule]
    return PiiPolicy.model_validate({**policy.model_dump(), "fields": fields})


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(masking("020", "a"), id="a rule on 020 $a"),
        pytest.param(masking("035", "a"), id="a rule on 035 $a"),
        pytest.param(
            load_policy().model_copy(update={"scrub_record_tags": ("0XX",)}),
            id="scrubbers scanning 0XX",
        ),
    ],
)
def test_a_policy_masking_a_field_the_numbers_come_from_stages_none(
    tmp_path: Path, policy: PiiPolicy
) -> None:
    _, staged = stage(tmp_path, "run-1", Masker(policy, b"k" * 32))
    assert staged and all(c.number_sources is None for c in staged)


def test_the_shipped_policy_masks_none_of_them(tmp_path: Path) -> None:
    _, staged = stage(tmp_path, "run-1", Masker(load_policy(), b"k" * 32))
    assert all(c.number_sources for c in staged)


def test_staging_with_numbers_holds_no_canary(tmp_path: Path) -> None:
    with SAMPLE.open("rb") as fh:
        originals = list(itertools.islice(pymarc.MARCReader(fh, to_unicode=True), 40))
    records, canaries = plant_canaries(originals)
    landing = write_records(records, tmp_path / "canaries.mrc")
    [ref] = split_file(describe_landing(landing, VENDOR.name), records_per_chunk=100)
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    masker = Masker(load_policy(), b"k" * 32)

    report = process_chunk(ref, VENDOR, RuntimeLayout(tmp_path), state, "run-1", masker)

    assert report.creates == 40
    assert all(c.number_sources for c in read_staged(report.staging_path))
    assert find_canaries([Path(report.staging_path)], canaries) == []
