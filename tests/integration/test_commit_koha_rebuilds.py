"""Commits and reverts on a Koha that rebuilds what it saves: compared by content, never bytes.

Koha rewrites 999 and 005 on every save and, with autoControlNumber = biblionumber, puts its
own biblio number in 001; none of that is a change, a drift or a reason to write again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.integration.test_commit import (  # noqa: F401
    PASSWORD,
    USER,
    Feed,
    control,
    feed,
    ils,
    ils_record,
    put_record,
    retitle,
    sample_records,
)

from catalog_sync.changes.revert import RevertReport, revert_run
from catalog_sync.changes.state import StateStore
from catalog_sync.config import load_vendors
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.services import ServiceProcess

# The Feed harness and its fixtures (ils, control, feed) are test_commit's: imported, not copied.
# ruff: noqa: F811

pytestmark = pytest.mark.timeout(120)


def test_with_auto_control_number_koha_keeps_its_001_and_a_reload_writes_nothing(
    tmp_path: Path, emulator_factory: Callable[..., ServiceProcess]
) -> None:
    koha = emulator_factory("--syspref", "autoControlNumber=biblionumber")
    vendor = load_vendors()["demo"].model_copy(update={"records_per_chunk": 10})
    feed = Feed(tmp_path, vendor, StateStore(f"sqlite:///{tmp_path / 'state.db'}"), koha.url)
    control = EmulatorControl(koha.url)
    records = sample_records(3)

    first, _ = feed.load(records)
    ids = [b["biblio_id"] for b in control.biblios()]
    assert first.created == 3
    assert [ils_record(koha.url, i)["001"].data for i in ids] == [str(i) for i in ids]
    seq = len(control.writes())

    again, _ = feed.load([records[0], retitle(records[1], "Retitled"), records[2]])

    # Only the real change is written, and Koha's 001 stays; no drift from Koha's rewrites.
    assert (again.updated, again.drifted, again.unchanged) == (1, 0, 2)
    assert [w["method"] for w in control.writes()[seq:]] == ["PUT"]
    retitled = ils_record(koha.url, ids[1])
    assert retitled["245"]["a"] == "Retitled" and retitled["001"].data == str(ids[1])


def test_revert_keeps_a_record_a_cataloguer_changed_since_the_run(
    feed: Feed, control: EmulatorControl
) -> None:
    records = sample_records(2)
    feed.load(records)
    feed.load([retitle(records[0], "Vendor title"), retitle(records[1], "Vendor title 2")])
    edited = control.biblios()[0]["biblio_id"]
    put_record(feed.ils_url, edited, retitle(records[0], "Cataloguer's title"))
    seq = len(control.writes())

    async def revert() -> RevertReport:
        settings = ILSSettings(
            name="ils_test", base_url=feed.ils_url, username=USER, password=PASSWORD
        )
        async with open_client(settings) as client:
            return await revert_run("run-2", "demo", {"ils_default": client}, feed.state)

    report = asyncio.run(revert())

    assert (report.restored, report.kept) == (1, Counter({"changed_since": 1}))
    assert [w["method"] for w in control.writes()[seq:]] == ["PUT"]
    assert ils_record(feed.ils_url, edited)["245"]["a"] == "Cataloguer's title"
    again = asyncio.run(revert())  # the restored one is already reverted; the kept one stays
    assert again.already == 1 and again.kept == Counter({"changed_since": 1})
    assert len(control.writes()) == seq + 1
