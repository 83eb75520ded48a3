"""pydantic form of a normalized record, for any stage that takes a record across a boundary."""

from __future__ import annotations

import pymarc
from pydantic import Field, ValidationError, field_validator, model_validator
from pymarc import Indicators, Subfield

from catalog_sync.marc.prepare import PreparedRecord, Rejection
from catalog_sync.marc.reasons import RejectReason
from catalog_sync.models import Payload

_TAG_PATTERN = r"^[0-9A-Za-z]{3}$"


class NormalizedField(Payload):
    """A control field (`data`) or a data field (indicators and subfields)."""

    tag: str = Field(pattern=_TAG_PATTERN)
    data: str | None = None
    ind1: str = Field(default=" ", min_length=1, max_length=1)
    ind2: str = Field(default=" ", min_length=1, max_length=1)
    subfields: list[tuple[str, str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> NormalizedField:
        control = self.tag < "010" and self.tag.isdigit()
        if control and (self.data is None or self.subfields):
            raise ValueError(f"control field {self.tag} needs data and no subfields")
        if not control and self.data is not None:
            raise ValueError(f"data field {self.tag} cannot hold control-field data")
        if any(len(code) != 1 for code, _ in self.subfields):
            raise ValueError(f"field {self.tag}: subfield codes are one character")
        return self


class NormalizedRecord(Payload):
    """A record as process_chunk accepted it: UTF-8 (NFC) text, leader/09 'a'."""

    leader: str = Field(min_length=24, max_length=24)
    fields: list[NormalizedField] = Field(min_length=1)
    control_number: str | None = None
    deleted: bool = False
    warnings: tuple[str, ...] = ()

    @field_validator("leader")
    @classmethod
    def _unicode_leader(cls, v: str) -> str:
        if v[9] != "a":
            raise ValueError("leader/09 must be 'a' (UTF-8) in a normalized record")
        return v

    @classmethod
    def from_prepared(cls, prepared: PreparedRecord) -> NormalizedRecord:
        return cls(
            leader=str(prepared.record.leader),
            fields=[
                NormalizedField(tag=f.tag, data=f.data)
                if f.control_field
                else NormalizedField(
                    tag=f.tag,
                    ind1=f.indicator1 or " ",
                    ind2=f.indicator2 or " ",
                    subfields=[(s.code, s.value) for s in f.subfields],
                )
                for f in prepared.record.fields
            ],
            control_number=prepared.control_number,
            deleted=prepared.deleted,
            warnings=prepared.warnings,
        )

    def to_pymarc(self) -> pymarc.Record:
        fields = [
            pymarc.Field(tag=f.tag, data=f.data)
            if f.data is not None
            else pymarc.Field(
                tag=f.tag,
                indicators=Indicators(f.ind1, f.ind2),
                subfields=[Subfield(c, v) for c, v in f.subfields],
            )
            for f in self.fields
        ]
        return pymarc.Record(fields=fields, leader=self.leader, force_utf8=True)


def to_payload(prepared: PreparedRecord) -> NormalizedRecord | Rejection:
    """The payload form of an accepted record; a record the model refuses becomes a rejection."""
    try:
        return NormalizedRecord.from_prepared(prepared)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return Rejection(
            RejectReason.PAYLOAD_INVALID.value,
            f"normalized record fails its model at {where}: {first.get('msg', 'invalid')}",
            prepared.control_number,
        )
