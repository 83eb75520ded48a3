"""The run report's ILS requests per written record agree exactly with what the emulator saw.

Real HTTP to the emulator: its /_emulator/counters (`requests`, every /api/ request it answered,
429s and injected errors included) and its write log (method and resource of every write) are
the ILS's own count; the report's is the client's, by kind of record work (issue 17 item 1).
Records are LoC books from samples/ and the real Koha export with a 952 item
(tests/fixtures/privacy/koha_952_item.mrc).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pymarc import Record
from tests.integration.test_commit import (  # noqa: F401
    Feed,
    control,
    deleted,
    feed,
    ils,
    retitle,
    sample_records,
)
from tests.integration.test_commit_items import koha_record, with_item

from catalog_sync.changes.state import StateStore
from catalog_sync.emulator.control import EmulatorControl
from catalog_sync.ils import ILSSettings, open_client
from catalog_sync.models import CommitReport
from catalog_sync.pipeline.commit import commit_changes
from catalog_sync.pipeline.report import write_report

# ruff: noqa: F811

pytestmark = pytest.mark.timeout(120)

USER, PASSWORD = "catalog", "catalog-demo"
# The emulator's write log names the resource; the report names the kind of record work.
KIND_OF_RESOURCE = {"biblio": {"POST": "create", "PUT": "update", "DELETE": "delete"}}


def run_with_report(
    feed: Feed, records: list[Record], **login: str | None
) -> tuple[list[CommitReport], Any]:
    """Stage, commit every chunk and write the run report; returns the commits and report.json.

    `login`: ILSSettings credentials instead of the demo user's (OAuth2 client credentials).
    """
    feed.runs += 1
    run_id = f"run-{feed.runs}"
    chunks = feed.stage(records, run_id)
    credentials = login or {"username": USER, "password": PASSWORD}
    settings = ILSSettings(name="ils_test", base_url=feed.ils_url, **credentials)

    async def commit() -> list[CommitReport]:
        async with open_client(settings) as client:
            return [
                await commit_changes(
                    c.chunk, c.staging_path, feed.vendor, client, feed.state, run_id
                )
                for c in chunks
            ]

    commits = asyncio.run(commit())
    _, out = write_report(feed.layout, feed.vendor.name, run_id, [], chunks, commits)
    return commits, json.loads((out / "report.json").read_text(encoding="utf-8"))


def writes_by_kind(writes: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """The emulator's writes as (kind, method): biblio writes by method, item writes as items."""
    return Counter(
        (
            "item" if w["resource"] == "item" else KIND_OF_RESOURCE["biblio"][w["method"]],
            w["method"],
        )
        for w in writes
    )


def reported_writes(figures: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter(
        {
            (kind, method): n
            for kind, figure in figures.items()
            if kind not in ("all", "shared")  # the shared POST is a login, not a write
            for method, n in figure["by_method"].items()
            if method in ("POST", "PUT", "DELETE")
        }
    )


def assert_agrees(report: Any, control: EmulatorControl, requests_before: int, seq: int) -> None:
    figures = report["requests_per_written_record"]
    assert figures["all"]["requests"] == control.counters()["requests"] - requests_before
    assert reported_writes(figures) == writes_by_kind(control.writes()[seq:])
    kinds = [k for k in figures if k != "all"]
    assert sum(figures[k]["requests"] for k in kinds) == figures["all"]["requests"]


def test_requests_per_written_record_agree_with_the_emulators_counters(
    feed: Feed, control: EmulatorControl
) -> None:
    books = sample_records(6)
    first, report = run_with_report(feed, [*books, koha_record()])
    assert_agrees(report, control, 0, 0)
    figures = report["requests_per_written_record"]
    assert (figures["create"]["written"], figures["item"]["written"]) == (7, 1)
    assert figures["create"]["per_written"] == round(figures["create"]["requests"] / 7, 2)
    assert figures["item"]["by_method"]["POST"] == 1
    assert sum(c.created for c in first) == 7

    requests_before, seq = control.counters()["requests"], len(control.writes())
    second = [
        retitle(books[0], "Updated title one"),
        retitle(books[1], "Updated title two"),
        deleted(books[2]),
        *books[3:],
        with_item(koha_record(), "35609000970845"),  # one more item on a known biblio
    ]
    commits, report = run_with_report(feed, second)
    assert_agrees(report, control, requests_before, seq)
    figures = report["requests_per_written_record"]
    written = {k: figures[k]["written"] for k in ("create", "update", "delete", "item")}
    assert written == {"create": 0, "update": 2, "delete": 1, "item": 1}
    # The chunk's three updates read their ILS copies in one request, then each its PUT; the
    # delete a read and its DELETE. The Koha record's update counts too: its bib was the
    # same, only its new item was written.
    assert figures["update"]["by_method"] == {"GET": 1, "PUT": 2}
    assert figures["delete"]["by_method"] == {"GET": 1, "DELETE": 1}
    assert figures["all"]["written"] == 3
    text = (feed.layout.reports / feed.vendor.name / "latest" / "report.txt").read_text()
    assert "  update: 3 / 2 updated = 1.50" in text
    assert sum(c.updated for c in commits) == 2


def test_retried_requests_are_counted_as_the_ils_saw_them(
    feed: Feed, control: EmulatorControl, tmp_path: Path
) -> None:
    books = sample_records(8)
    clean = Feed(
        tmp_path / "clean", feed.vendor, StateStore(f"sqlite:///{tmp_path / 'c.db'}"), feed.ils_url
    )
    _, report = run_with_report(clean, books)
    assert_agrees(report, control, 0, 0)
    unretried = report["requests_per_written_record"]["all"]["requests"]

    control.reset()
    # A 429 answer costs a request of the rate limit like any other: every attempt counts.
    control.set_faults(error_rate=0.3, error_statuses=[429], seed=17)
    try:
        _, report = run_with_report(feed, books)
    finally:
        control.clear_faults()
    retried = control.counters()["injected_errors"]
    figures = report["requests_per_written_record"]
    assert retried > 0
    assert figures["all"]["requests"] == control.counters()["requests"] == unretried + retried
    assert figures["create"]["written"] == 8


def test_a_login_token_is_counted_once_as_shared_not_against_a_record(
    feed: Feed, control: EmulatorControl
) -> None:
    login = {"username": None, "password": None}
    login |= {"client_id": "catalog-sync", "client_secret": "catalog-sync-demo"}
    _, report = run_with_report(feed, sample_records(4), **login)

    figures = report["requests_per_written_record"]
    assert control.counters()["tokens_issued"] == 1
    assert figures["shared"]["by_method"] == {"POST": 1}
    assert figures["create"]["requests"] == figures["all"]["requests"] - 1
    assert_agrees(report, control, 0, 0)
