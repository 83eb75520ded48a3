"""process_chunk's per-record entry point: raw bytes in, a normalized record or a rejection out."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import pymarc
from pymarc import Field, Subfield

from catalog_sync.config import VendorConfig
from catalog_sync.marc.reader import RawRecord
from catalog_sync.models import RecordFormat


@dataclass(frozen=True)
class PreparedRecord:
    """A record that passed validation, normalized to UTF-8, NFC, leader/09 'a'."""

    record: pymarc.Record
    control_number: str | None
    deleted: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rejection:
    """Why a record was not accepted; `detail` names no record content beyond the control number."""

    reason: str
    detail: str
    control_number: str | None = None


class RecordRejected(Exception):
    """Raised inside preparation to stop at the first fatal problem of one record."""

    def __init__(self, reason: str, detail: str, control_number: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.control_number = control_number


def prepare_record(
    raw: RawRecord, fmt: RecordFormat, vendor: VendorConfig
) -> PreparedRecord | Rejection:
    """Parse, validate and normalize one record; bad content is a Rejection, never an exception."""
    try:
        record = _parse(raw, fmt)
        return _finish(record, vendor, ())
    except RecordRejected as exc:
        return Rejection(exc.reason, exc.detail, exc.control_number)
    except Exception as exc:  # a parser bug on odd bytes must cost one record, not the chunk
        return Rejection("unparseable", f"record could not be parsed ({type(exc).__name__})")


def _parse(raw: RawRecord, fmt: RecordFormat) -> pymarc.Record:
    if raw.clipped:
        raise RecordRejected("record_too_long", f"{raw.size} bytes without a record terminator")
    if fmt == "iso2709":
        return _parse_iso2709(raw.data)
    raise RecordRejected("unsupported_format", f"records in {fmt} cannot be prepared yet")


def _parse_iso2709(data: bytes) -> pymarc.Record:
    utf8 = data[9:10] == b"a"
    if not utf8 and not data.isascii():
        try:
            data.decode("utf-8")
            utf8 = True  # leader/09 says MARC-8 but the bytes are UTF-8
        except UnicodeDecodeError:
            pass
    try:
        return pymarc.Record(data, to_unicode=True, force_utf8=utf8, hide_utf8_warnings=True)
    except UnicodeDecodeError as exc:
        raise RecordRejected(
            "invalid_utf8", f"invalid UTF-8 at byte {exc.start} of a field"
        ) from exc
    except pymarc.exceptions.PymarcException as exc:
        raise RecordRejected("structure_invalid", str(exc)) from exc


def _nfc(value: str) -> str:
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def _finish(
    record: pymarc.Record, vendor: VendorConfig, warnings: tuple[str, ...]
) -> PreparedRecord:
    control = record.get("001")
    control_number = control.data.strip() if control is not None and control.data else None
    for field in record.fields:
        if field.control_field:
            if field.data is not None:
                field.data = _nfc(field.data)
        else:
            field.subfields = [Subfield(s.code, _nfc(s.value)) for s in field.subfields]
    missing = [tag for tag in vendor.required_fields if not record.get_fields(tag)]
    if missing:
        raise RecordRejected(
            "missing_required_field",
            f"required field(s) {', '.join(missing)} missing",
            control_number,
        )
    record.leader = pymarc.Leader(str(record.leader)[:9] + "a" + str(record.leader)[10:])
    return PreparedRecord(record, control_number, record.leader[5] == "d", warnings)


__all__ = ["Field", "PreparedRecord", "RecordRejected", "Rejection", "prepare_record"]
