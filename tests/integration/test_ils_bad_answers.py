"""Answers that are not Koha's (a proxy's HTML page, an empty 200, a record cut in half) fail
that record with a reason code, or the task with a message naming the ILS and the request;
nothing is half-written and nothing is lost."""
# The Feed harness and its fixtures (ils, control, feed) are test_commit's: imported, not copied.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import io

import httpx
import pymarc
import pytest
from tests.integration.test_commit import (  # noqa: F401
    PASSWORD,
    USER,
    Feed,
    control,
    feed,
    ils,
    retitle,
    sample_records,
)

from catalog_sync.changes.stamp import stamp_record
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, ILSUnavailable, open_client

pytestmark = pytest.mark.timeout(120)


def titles(feed: Feed, control: EmulatorControl) -> set[str]:
    out = set()
    for b in control.biblios():
        answer = httpx.get(
            f"{feed.ils_url}/api/v1/biblios/{b['biblio_id']}",
            headers={"Accept": "application/marcxml+xml"},
            auth=(USER, PASSWORD),
            timeout=10,
        )
        out.add(pymarc.parse_xml_to_array(io.BytesIO(answer.content))[0]["245"]["a"])
    return out


def test_a_proxy_page_instead_of_the_ils_copy_fails_those_records_and_loses_nothing(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(4)
    feed.load(records)
    changed = [retitle(r, f"New title {i}") for i, r in enumerate(records)]
    seq = len(control.writes())
    control.set_faults(bad_answer_rate=1, bad_answer="html", bad_answer_methods=["GET"])

    report, _ = feed.load(changed)

    assert (report.failed, report.updated) == (4, 0)
    assert control.writes()[seq:] == []
    assert control.counters()["bad_answers"] >= 4
    control.clear_faults()
    again, _ = feed.load(changed)  # the next run writes what the refused one could not
    assert again.updated == 4
    assert titles(feed, control) == {f"New title {i}" for i in range(4)}


def test_a_record_cut_in_half_is_held_for_review_and_not_overwritten(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(2)
    feed.load(records)
    seq = len(control.writes())
    control.set_faults(bad_answer_rate=1, bad_answer="garbled", bad_answer_methods=["GET"])

    report, diffs = feed.load([retitle(records[0], "Changed"), records[1]])

    assert report.reviews == {"ils_record_unreadable": 1}
    assert control.writes()[seq:] == []
    assert [d["outcome"] for d in diffs] == ["review:ils_record_unreadable"]


def test_an_empty_answer_to_a_create_koha_saved_is_found_by_its_stamp_not_resent(
    feed: Feed, control: EmulatorControl
) -> None:
    control.set_faults(bad_answer_rate=1, bad_answer="empty", bad_answer_methods=["POST"])

    report, _ = feed.load(sample_records(5))

    assert report.created == 5 and report.failed == 0
    assert control.counters()["bad_answers"] == 5
    assert sorted(control.creates_per_control_number().values()) == [1] * 5


def test_a_proxy_page_to_every_create_fails_the_call_naming_the_ils_and_writes_nothing(
    control: EmulatorControl,
) -> None:
    control.set_faults(bad_answer_rate=1, bad_answer="html", bad_answer_methods=["POST"])
    record = stamp_record(sample_records(1)[0], "bad-answer-1")
    settings = ILSSettings(
        name="koha_prod", base_url=control.url, username=USER, password=PASSWORD, max_attempts=3
    )

    async def create() -> str:
        async with open_client(settings) as client:
            xml = pymarc.record_to_xml(record, namespace=True)
            return await client.create_biblio(xml, correlation_id="bad-1")

    with pytest.raises(ILSUnavailable, match=r"koha_prod.*create biblio.*200 without a biblio id"):
        asyncio.run(create())
    assert control.biblios() == []


def test_an_unstamped_create_whose_answer_is_lost_is_never_resent(
    control: EmulatorControl,
) -> None:
    # Without a stamp nothing can tell a saved record from a lost request: one try only.
    control.set_faults(bad_answer_rate=1, bad_answer="empty", bad_answer_methods=["POST"])
    settings = ILSSettings(name="koha_prod", base_url=control.url, username=USER, password=PASSWORD)
    xml = pymarc.record_to_xml(sample_records(1)[0], namespace=True)

    async def create() -> str:
        async with open_client(settings) as client:
            return await client.create_biblio(xml, correlation_id="unstamped-1")

    with pytest.raises(ILSUnavailable, match="may or may not have been applied"):
        asyncio.run(create())
    assert len(control.biblios()) == 1
