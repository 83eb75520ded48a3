"""Vendor MARC becomes a FOLIO instance: title, typed identifiers, instance type, MARC source."""

from __future__ import annotations

import pymarc
import pytest
from tests.conftest import FIXTURES

from catalog_sync.ils.folio.mapping import InstanceMappingError, identifiers, instance_from_marc
from catalog_sync.ils.folio.reference import IDENTIFIER_TYPES, INSTANCE_TYPES

NAMES = {v: k for k, v in IDENTIFIER_TYPES.items()}


def _records(name: str) -> list[pymarc.Record]:
    with (FIXTURES / "marc" / name).open("rb") as handle:
        return [r for r in pymarc.MARCReader(handle, to_unicode=True) if r is not None]


def test_instance_has_title_from_245_without_closing_punctuation(
    loc_records: list[pymarc.Record],
) -> None:
    record = loc_records[10]  # 245 $a ... : $b ... / $c (statement of responsibility)
    instance = instance_from_marc(record, "4b6c8b5e-3f0a-4c7e-9d1a-0d8e6f2a1b3c")
    assert instance["id"] == "4b6c8b5e-3f0a-4c7e-9d1a-0d8e6f2a1b3c"
    assert instance["source"] == "MARC"
    title_a, title_b = record["245"]["a"], record["245"]["b"]
    assert title_a.endswith(" :") and title_b.endswith(" /")
    assert instance["title"] == f"{title_a} {title_b[:-2]}"
    assert record["245"]["c"] not in instance["title"]


def test_identifiers_carry_folios_type_uuids(loc_records: list[pymarc.Record]) -> None:
    record = loc_records[22]  # 010, two 020s and two 035s
    found = [(NAMES[i["identifierTypeId"]], i["value"]) for i in identifiers(record)]
    lccn = record["010"]["a"].strip()
    assert ("LCCN", lccn) in found
    isbns = [s.strip() for f in record.get_fields("020") for s in f.get_subfields("a")]
    assert [v for n, v in found if n == "ISBN"] == isbns
    system = [v for f in record.get_fields("035") for v in f.get_subfields("a")]
    assert {v for n, v in found if n in ("OCLC", "System control number")} == set(system)
    oclc = [v for n, v in found if n == "OCLC"]
    assert all(v.startswith("(OCoLC)") for v in oclc)


def test_instance_type_is_unspecified_without_336_as_folio_maps_it(
    loc_records: list[pymarc.Record],
) -> None:
    assert all(not r.get_fields("336") for r in loc_records[:5])
    assert instance_from_marc(loc_records[0])["instanceTypeId"] == INSTANCE_TYPES["unspecified"]


def test_instance_type_follows_336_content_code(loc_records: list[pymarc.Record]) -> None:
    record = loc_records[0]
    record.add_field(
        pymarc.Field(
            tag="336",
            indicators=pymarc.Indicators(" ", " "),
            subfields=[pymarc.Subfield("a", "text"), pymarc.Subfield("b", "txt")],
        )
    )
    assert instance_from_marc(record)["instanceTypeId"] == INSTANCE_TYPES["text"]


def test_record_without_a_title_is_rejected_with_a_reason() -> None:
    authority = _records("auth_363723.mrc")[0]  # an authority record: no 245 by definition
    with pytest.raises(InstanceMappingError) as caught:
        instance_from_marc(authority)
    assert caught.value.reason == "no_title"
