"""The canary helpers themselves: every policy field gets one, and a search finds them anywhere."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

from pymarc import MARCReader, Record
from tests.privacy_canaries import find_canaries, plant_canaries, write_records

from catalog_sync.privacy import load_policy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "privacy"


def records() -> list[Record]:
    out: list[Record] = []
    for name in ("loc_acquisition_provenance.mrc", "vendor_shelfready_priced_9xx.mrc"):
        with (FIXTURES / name).open("rb") as fh:
            out += [r for r in MARCReader(fh, to_unicode=True) if r is not None]
    return out


def test_every_policy_subfield_of_every_record_carries_a_canary() -> None:
    originals = records()
    before = [r.as_json() for r in originals]
    planted, canaries = plant_canaries(originals)

    assert [r.as_json() for r in originals] == before
    policy = load_policy()
    for record in planted:
        for rule in policy.fields:
            for tag in rule.tags:
                values = [
                    v
                    for f in record.get_fields(tag)
                    if f.indicators is not None and f.indicators[0] not in rule.keep_when_ind1
                    for code in rule.subfields
                    for v in f.get_subfields(code)
                ]
                assert {c for c in canaries if c in values}, (tag, rule.rule)
        notes = " ".join(f.value() for f in record.get_fields("500", "852"))
        assert sum(c in notes for c in canaries.by_rule["scrub:email"]) == 2
        assert sum(c in notes for c in canaries.by_rule["scrub:patron-barcode"]) == 2


def test_canaries_are_unique_and_none_is_part_of_another() -> None:
    _, canaries = plant_canaries(records())
    assert len(set(canaries)) == len(canaries)
    assert not [(a, b) for a in canaries for b in canaries if a != b and a in b]
    assert canaries.ils_values == canaries.all


def test_find_canaries_searches_text_binary_gzip_and_sqlite_files(tmp_path: Path) -> None:
    planted, canaries = plant_canaries(records()[:2])
    a, b, c, d = canaries[0], canaries[5], canaries[9], canaries[-1]
    (tmp_path / "logs" / "dag" / "run").mkdir(parents=True)
    (tmp_path / "logs" / "dag" / "run" / "attempt=1.log").write_text(f"x {a} y\n")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "chunk.mrc").write_bytes(str(planted[0]).encode())
    (tmp_path / "reports.json.gz").write_bytes(gzip.compress(json.dumps({"v": b}).encode()))
    db = sqlite3.connect(tmp_path / "airflow.db")
    db.execute("create table xcom (value blob)")
    db.execute("insert into xcom values (?)", (json.dumps([c]).encode(),))
    db.commit()
    db.close()
    (tmp_path / "clean.txt").write_text("nothing to see")

    hits = find_canaries([tmp_path / "logs", tmp_path / "staging", tmp_path], [a, b, c, d])

    found = {(p.relative_to(tmp_path).as_posix(), v) for p, v in hits}
    assert ("logs/dag/run/attempt=1.log", a) in found
    assert ("reports.json.gz", b) in found
    assert ("airflow.db", c) in found
    assert {v for p, v in found if p == "staging/chunk.mrc"} == {
        v for v in (a, b, c, d) if v in str(planted[0])
    }
    assert not any(p == "clean.txt" for p, _ in found)


def test_find_canaries_reports_nothing_for_clean_trees_and_no_canaries(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("QZCANARY but not a full value")
    assert find_canaries([tmp_path], ["QZCANARY00001Q"]) == []
    assert find_canaries([tmp_path], []) == []
    assert find_canaries([tmp_path / "missing"], ["QZCANARY00001Q"]) == []


def test_planted_records_written_as_a_delivery_read_back_with_every_canary(
    tmp_path: Path,
) -> None:
    planted, canaries = plant_canaries(records())
    path = write_records(planted, tmp_path / "inbox" / "demo" / "delivery.mrc")
    with path.open("rb") as fh:
        back = [r for r in MARCReader(fh, to_unicode=True) if r is not None]
    assert len(back) == len(planted)
    assert [r.title for r in back] == [r.title for r in planted]
    assert {c for _, c in find_canaries([path], canaries)} == set(canaries)
