"""commit_changes on the real emulator: matching, real-change diffs, drift, deletes, dry run."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymarc
import pytest
from pymarc import Field, Indicators, Record, Subfield

from catalog_sync.changes.fingerprint import ils_comparable
from catalog_sync.changes.revert import RevertReport, revert_run
from catalog_sync.changes.state import StateStore
from catalog_sync.config import VendorConfig, load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.leases import LeaseManager
from catalog_sync.marc.split import split_file
from catalog_sync.models import ChunkReport, CommitReport, LandingFile
from catalog_sync.paths import RuntimeLayout, layout
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.pipeline.deletecap import check_delete_cap
from catalog_sync.pipeline.process import process_chunk
from catalog_sync.privacy import Masker, load_policy
from catalog_sync.services import ServiceProcess, start_emulator

pytestmark = pytest.mark.timeout(120)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loc-books-2016-part01-first1000.mrc"
BLANK = Indicators(" ", " ")
USER, PASSWORD = "catalog", "catalog-demo"


def sample_records(n: int) -> list[Record]:
    with SAMPLE.open("rb") as fh:
        records = [r for r in pymarc.MARCReader(fh, to_unicode=True) if r is not None]
    return [copy.deepcopy(r) for r in records[:n]]


@dataclass
class Feed:
    """One vendor's loads through process_chunk and commit_changes, as the DAG runs them."""

    home: Path
    vendor: VendorConfig
    state: StateStore
    ils_url: str
    runs: int = 0

    @property
    def layout(self) -> RuntimeLayout:
        return layout(self.home)

    def stage(self, records: list[Record], run_id: str) -> list[ChunkReport]:
        data = b"".join(r.as_marc() for r in records)
        sha = hashlib.sha256(data).hexdigest()
        path = self.home / "landing" / sha / "delivery.mrc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        landing = LandingFile(
            vendor=self.vendor.name,
            name="delivery.mrc",
            path=str(path),
            sha256=sha,
            size=len(data),
            format="iso2709",
        )
        return [
            process_chunk(ref, self.vendor, self.layout, self.state, run_id)
            for ref in split_file(landing, self.vendor.records_per_chunk)
        ]

    def load(
        self, records: list[Record], *, dry_run: bool = False, masker: Masker | None = None
    ) -> tuple[CommitReport, list[dict[str, Any]]]:
        """Stage and commit; returns the chunk totals and the masked diffs written."""
        self.runs += 1
        run_id = f"run-{self.runs}"
        chunks = self.stage(records, run_id)

        async def commit() -> list[CommitReport]:
            settings = ILSSettings(
                name="ils_test", base_url=self.ils_url, username=USER, password=PASSWORD
            )
            async with open_client(settings) as client:
                return [
                    await commit_changes(
                        c.chunk,
                        c.staging_path,
                        self.vendor,
                        client,
                        self.state,
                        run_id,
                        dry_run=dry_run,
                        masker=masker,
                        diff_file=self.home / "diffs" / run_id / f"{c.chunk_id}.jsonl",
                    )
                    for c in chunks
                ]

        reports = asyncio.run(commit())
        totals: dict[str, Any] = {"chunk_id": "all", "dry_run": dry_run}
        for field in ("created", "updated", "deleted", "unchanged", "already_applied", "failed"):
            totals[field] = sum(getattr(r, field) for r in reports)
        for field in ("matched", "no_change", "drifted", "review"):
            totals[field] = sum(getattr(r, field) for r in reports)
        reviews: dict[str, int] = {}
        for r in reports:
            for k, v in r.reviews.items():
                reviews[k] = reviews.get(k, 0) + v
        totals["reviews"] = reviews
        diffs = [
            json.loads(line) for r in reports for line in Path(r.diff_path).read_text().splitlines()
        ]
        return CommitReport(**totals), diffs


@pytest.fixture(scope="module")
def ils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    proc = start_emulator(tmp_path_factory.mktemp("ils"), db=None)
    yield proc
    proc.stop()


@pytest.fixture
def control(ils: ServiceProcess) -> EmulatorControl:
    ctl = EmulatorControl(ils.url)
    ctl.reset()
    return ctl


@pytest.fixture
def feed(tmp_path: Path, ils: ServiceProcess, control: EmulatorControl) -> Feed:
    vendor = load_vendors()["demo"].model_copy(update={"records_per_chunk": 10})
    return Feed(tmp_path, vendor, StateStore(f"sqlite:///{tmp_path / 'state.db'}"), ils.url)


def ils_record(url: str, biblio_id: int | str) -> Record:
    response = httpx.get(
        f"{url}/api/v1/biblios/{biblio_id}",
        headers={"Accept": "application/marcxml+xml"},
        auth=(USER, PASSWORD),
        timeout=10,
    )
    response.raise_for_status()
    record: Record = pymarc.parse_xml_to_array(io.BytesIO(response.content))[0]
    return record


def ils_contents(url: str, control: EmulatorControl) -> dict[str, list[str]]:
    """Every ILS record's content by 001, without what Koha rebuilds on save (005, 999, stamp)."""
    return {
        b["control_number"]: [
            str(f) for f in ils_comparable(ils_record(url, b["biblio_id"])).fields
        ]
        for b in control.biblios()
    }


def put_record(url: str, biblio_id: int | str, record: Record) -> None:
    httpx.put(
        f"{url}/api/v1/biblios/{biblio_id}",
        content=pymarc.record_to_xml(record, namespace=True),
        headers={"Content-Type": "application/marcxml+xml"},
        auth=(USER, PASSWORD),
        timeout=10,
    ).raise_for_status()


def post_record(url: str, record: Record) -> int:
    response = httpx.post(
        f"{url}/api/v1/biblios",
        content=pymarc.record_to_xml(record, namespace=True),
        headers={"Content-Type": "application/marcxml+xml", "x-confirm-not-duplicate": "1"},
        auth=(USER, PASSWORD),
        timeout=10,
    )
    response.raise_for_status()
    return int(response.json()["id"])


def id_of(control: EmulatorControl, record: Record) -> int:
    number = record["001"].value().strip()
    return next(b["biblio_id"] for b in control.biblios() if b["control_number"] == number)


def retitle(record: Record, title: str) -> Record:
    changed = copy.deepcopy(record)
    changed["245"]["a"] = title
    return changed


def test_only_really_changed_records_are_written_and_protected_fields_stay(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(20)
    first, _ = feed.load(records)
    assert (first.created, first.updated) == (20, 0)
    # The library adds a local note and a local 952 to one record in the ILS.
    target = records[3]
    local = ils_record(feed.ils_url, id_of(control, target))
    local.add_ordered_field(Field("590", BLANK, [Subfield("a", "Local: signed copy")]))
    local.add_ordered_field(Field("952", BLANK, [Subfield("a", "MAIN")]))
    put_record(feed.ils_url, id_of(control, target), local)
    seq = len(control.writes())

    changed = list(records)
    changed[3] = retitle(records[3], "A new title")
    changed[7] = retitle(records[7], "Another title")
    report, diffs = feed.load(changed)

    writes = control.writes()[seq:]
    assert sorted(w["record_id"] for w in writes) == sorted(
        [id_of(control, records[3]), id_of(control, records[7])]
    )
    assert {w["method"] for w in writes} == {"PUT"}
    assert (report.updated, report.unchanged, report.created) == (2, 18, 0)
    kept = ils_record(feed.ils_url, id_of(control, target))
    assert kept["245"]["a"] == "A new title"
    assert kept["590"]["a"] == "Local: signed copy" and kept["952"]["a"] == "MAIN"
    assert [(d["record_key"], [f["tag"] for f in d["fields"]]) for d in diffs] == [
        (f"DLC:{records[3]['001'].value().strip()}", ["245"]),
        (f"DLC:{records[7]['001'].value().strip()}", ["245"]),
    ]
    assert diffs[0]["fields"][0]["detail"]["values_changed"]


def test_a_change_in_protected_fields_only_is_not_sent(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(5)
    feed.load(records)
    seq = len(control.writes())
    changed = list(records)
    changed[0] = copy.deepcopy(records[0])
    changed[0].add_ordered_field(Field("949", BLANK, [Subfield("a", "vendor local")]))

    report, _ = feed.load(changed)

    assert control.writes()[seq:] == []
    assert (report.no_change, report.updated) == (1, 0)
    again, _ = feed.load(changed)  # the state now knows it: no ILS call at all
    assert again.unchanged == 5


@pytest.mark.parametrize(
    ("policy", "written", "expected"),
    [("review", False, "review"), ("skip", False, "unchanged"), ("overlay", True, "updated")],
)
def test_a_record_edited_in_the_ils_is_handled_by_the_drift_policy(
    feed: Feed, control: EmulatorControl, policy: str, written: bool, expected: str
) -> None:
    feed.vendor = feed.vendor.model_copy(update={"drift_policy": policy})
    records = sample_records(3)
    feed.load(records)
    biblio = id_of(control, records[1])
    put_record(feed.ils_url, biblio, retitle(records[1], "Edited by a cataloguer"))
    seq = len(control.writes())

    report, _ = feed.load([records[0], retitle(records[1], "Vendor's new title"), records[2]])

    assert report.drifted == 1
    assert getattr(report, expected) >= 1
    after = ils_record(feed.ils_url, biblio)["245"]["a"]
    assert after == ("Vendor's new title" if written else "Edited by a cataloguer")
    assert len(control.writes()[seq:]) == (1 if written else 0)
    if policy == "review":
        assert report.reviews == {"drift": 1}


def test_a_new_record_matches_its_ils_copy_by_lccn_and_is_updated(
    feed: Feed, control: EmulatorControl
) -> None:
    record = sample_records(1)[0]
    # The ILS already holds the same book under its LCCN (010), with another 001.
    ils_copy = copy.deepcopy(record)
    ils_copy["001"].data = "ocm-local-1"
    ils_copy["245"]["a"] = "Older title"
    existing = post_record(feed.ils_url, ils_copy)
    seq = len(control.writes())

    report, _ = feed.load([record])

    writes = control.writes()[seq:]
    assert [(w["method"], w["record_id"]) for w in writes] == [("PUT", existing)]
    assert (report.matched, report.updated, report.created) == (1, 1, 0)
    assert (
        ils_record(feed.ils_url, existing)["001"].value().strip() == record["001"].value().strip()
    )


def test_several_matching_ils_records_go_to_review_and_nothing_is_written(
    feed: Feed, control: EmulatorControl
) -> None:
    record = sample_records(1)[0]
    for n in (1, 2):
        twin = copy.deepcopy(record)
        twin["001"].data = f"local-{n}"
        post_record(feed.ils_url, twin)
    seq = len(control.writes())

    report, diffs = feed.load([record])

    assert control.writes()[seq:] == []
    assert report.reviews == {"ambiguous_match:010": 1}
    assert report.created == 0
    assert [(d["outcome"], d["fields"]) for d in diffs] == [("review:ambiguous_match:010", [])]


def deleted(record: Record) -> Record:
    gone = copy.deepcopy(record)
    gone.leader.record_status = "d"
    return gone


def test_deletes_only_reach_records_without_items(feed: Feed, control: EmulatorControl) -> None:
    records = sample_records(4)
    feed.load(records)
    with_items = id_of(control, records[0])
    httpx.post(
        f"{feed.ils_url}/api/v1/biblios/{with_items}/items",
        json={"external_id": "39999000000001"},
        auth=(USER, PASSWORD),
        timeout=10,
    ).raise_for_status()
    seq = len(control.writes())

    report, _ = feed.load([deleted(records[0]), deleted(records[1]), records[2], records[3]])

    writes = control.writes()[seq:]
    assert [(w["method"], w["record_id"]) for w in writes] == [
        ("DELETE", id_of_gone(records[1], feed))
    ]
    assert report.deleted == 1
    assert report.reviews == {"items_attached": 1}
    assert with_items in {b["biblio_id"] for b in control.biblios()}


def id_of_gone(record: Record, feed: Feed) -> int:
    key = f"DLC:{record['001'].value().strip()}"
    ils_id = feed.state.applied(feed.vendor.ils_conn_id, [key])[key].ils_id
    assert ils_id is not None
    return int(ils_id)


def test_deletes_over_the_cap_need_approval(feed: Feed) -> None:
    records = sample_records(60)
    feed.load(records)
    few = [deleted(r) if i < 1 else r for i, r in enumerate(records)]
    many = [deleted(r) if i < 2 else r for i, r in enumerate(records)]

    within = check_delete_cap(feed.stage(few, "check-1"), feed.vendor, feed.state)
    over = check_delete_cap(feed.stage(many, "check-2"), feed.vendor, feed.state)

    assert (within.deletes, within.cap, within.over_cap) == (1, 1, False)
    assert (over.deletes, over.over_cap) == (2, True)
    assert "needs approval" in over.message("demo") and "approve_deletes" in over.message("demo")


def test_dry_run_reports_masked_field_diffs_and_writes_nothing(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(6)
    feed.load(records)
    seq = len(control.writes())
    changed = list(records)
    changed[2] = copy.deepcopy(records[2])
    price = "Purchase price USD 123.45"
    changed[2].add_ordered_field(Field("541", BLANK, [Subfield("h", price)]))
    masker = Masker(load_policy(), "test-key-not-secret")

    report, diffs = feed.load(changed, dry_run=True, masker=masker)

    assert control.writes()[seq:] == []
    assert report.dry_run and report.updated == 1
    assert [f["tag"] for f in diffs[0]["fields"]] == ["541"]
    shown = json.dumps(diffs)
    assert price not in shown and masker.hash_value(price) in shown
    key = f"DLC:{records[2]['001'].value().strip()}"
    before = feed.state.applied(feed.vendor.ils_conn_id, [key])[key].fingerprint
    real, _ = feed.load(changed)  # the dry run left the state as it was: the change still counts
    assert real.updated == 1
    assert feed.state.applied(feed.vendor.ils_conn_id, [key])[key].fingerprint != before


def test_revert_restores_updated_and_deleted_records_and_a_second_revert_writes_nothing(
    feed: Feed, control: EmulatorControl, redis_url: str
) -> None:
    records = sample_records(4)
    feed.load(records)
    before = ils_contents(feed.ils_url, control)
    report, _ = feed.load([deleted(records[0]), retitle(records[1], "New"), *records[2:]])
    assert (report.deleted, report.updated) == (1, 1)
    seq = len(control.writes())

    async def revert() -> RevertReport:
        settings = ILSSettings(
            name="ils_test", base_url=feed.ils_url, username=USER, password=PASSWORD
        )
        async with open_client(settings) as client, LeaseManager.from_url(redis_url) as leases:
            return await revert_run("run-2", "demo", {"ils_default": client}, feed.state, leases)

    first = asyncio.run(revert())

    assert (first.restored, first.recreated, first.kept) == (1, 1, Counter())
    assert ils_contents(feed.ils_url, control) == before
    assert sorted(w["method"] for w in control.writes()[seq:]) == ["POST", "PUT"]
    seq = len(control.writes())
    again = asyncio.run(revert())
    assert again.already == 2 and control.writes()[seq:] == []
    # The state is back too: the same re-delivery is again one delete and one update.
    redo, _ = feed.load([deleted(records[0]), retitle(records[1], "New"), *records[2:]])
    assert (redo.deleted, redo.updated) == (1, 1)


def test_a_match_already_bound_to_another_vendor_record_goes_to_review(
    feed: Feed, control: EmulatorControl
) -> None:
    record = sample_records(1)[0]
    feed.load([record])
    # Another record of the feed carries the same LCCN under its own 001.
    other = copy.deepcopy(record)
    other["001"].data = "vendor-other-1"
    seq = len(control.writes())

    report, diffs = feed.load([record, other])

    assert control.writes()[seq:] == []
    assert report.reviews == {"match_taken:010": 1}
    assert [d["outcome"] for d in diffs] == ["review:match_taken:010"]


def test_an_isbn_10_in_the_file_matches_the_isbn_13_of_the_ils_copy(
    feed: Feed, control: EmulatorControl
) -> None:
    record = sample_records(1)[0]
    record.remove_fields("035")
    record.add_ordered_field(Field("020", BLANK, [Subfield("a", "0-19-852663-6 (pbk.)")]))
    ils_copy = copy.deepcopy(record)
    ils_copy["001"].data = "local-isbn-1"
    ils_copy.remove_fields("020")
    ils_copy.add_ordered_field(Field("020", BLANK, [Subfield("a", "9780198526636")]))
    existing = post_record(feed.ils_url, ils_copy)
    seq = len(control.writes())

    report, _ = feed.load([record])

    assert [(w["method"], w["record_id"]) for w in control.writes()[seq:]] == [("PUT", existing)]
    assert report.matched == 1


def test_revert_keeps_a_created_record_that_has_items_now(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(2)
    feed.load(records)
    with_items = id_of(control, records[0])
    httpx.post(
        f"{feed.ils_url}/api/v1/biblios/{with_items}/items",
        json={"external_id": "39999000000002"},
        auth=(USER, PASSWORD),
        timeout=10,
    ).raise_for_status()

    async def revert() -> RevertReport:
        settings = ILSSettings(
            name="ils_test", base_url=feed.ils_url, username=USER, password=PASSWORD
        )
        async with open_client(settings) as client:
            return await revert_run("run-1", "demo", {"ils_default": client}, feed.state)

    report = asyncio.run(revert())

    assert (report.deleted, report.kept) == (1, Counter({"items_attached": 1}))
    assert [b["biblio_id"] for b in control.biblios()] == [with_items]
    assert "kept: items_attached=1" in report.line()
