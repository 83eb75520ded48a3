"""process_chunk's per-record entry point: raw bytes in, a normalized record or a rejection out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pymarc
from pymarc import Field, Indicators, Subfield

from catalog_sync.changes.fingerprint import match_point_key
from catalog_sync.config import VendorConfig
from catalog_sync.marc.encoding import Charset, decoder_for, detect_charset
from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.fastprint import fingerprint_canonical_bytes, fingerprint_record
from catalog_sync.marc.iso2709 import MAX_RECORD_BYTES, frame_fields, iso2709_overflow
from catalog_sync.marc.marcxml import parse_marcxml_record
from catalog_sync.marc.reader import RawRecord
from catalog_sync.marc.reasons import RecordWarning, RejectReason
from catalog_sync.marc.repair import Strictness, repair_indicators, repair_xml_indicators
from catalog_sync.marc.rules import (
    check_control_field,
    check_data_field,
    check_tag,
    format_kind,
    missing_required,
)
from catalog_sync.models import RecordFormat

_XML_001 = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?controlfield\s+tag=[\"']001[\"']\s*>([^<]{1,64})<")
_NEW_FIELD = Field.__new__
# Subfield(code, value) without NamedTuple's Python-level __new__: ~45 per record, a tenth of
# the parse. Same tuple subclass, same fields.
_NEW_TUPLE = tuple.__new__
# Every indicator pair repair_indicators keeps as it is (two graphic ASCII characters or
# blanks), so the common case is one dict lookup instead of a call.
_KEPT_INDICATORS = {
    a + b: Indicators(a, b)
    for a in map(chr, range(0x20, 0x7F))
    for b in map(chr, range(0x20, 0x7F))
}
_LEADER_STATUS = frozenset("acdnp")
# C0 controls other than the ISO 2709 separators, tab/LF/CR and (for MARC-8) ESC: they are not
# text, XML cannot carry them, and ILS APIs choke on them. Found with one scan of the raw bytes.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c]")
_CONTROL_BYTES_OR_ESC = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1c]")
_DROP_CONTROLS = {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x1D)]}
_LEADER_TYPE = frozenset("acdefgijkmoprtuvxyz")


@dataclass(frozen=True)
class PreparedRecord:
    """A record that passed validation, normalized to UTF-8, NFC, leader/09 'a'."""

    record: pymarc.Record
    control_number: str | None
    deleted: bool
    warnings: tuple[str, ...] = ()
    # The delivered ISO 2709 bytes when they already are the record's canonical UTF-8
    # serialisation (leader lengths aside): contiguous layout, no repair, no NFC change.
    canonical: bytes | None = None

    def fingerprint(self) -> str:
        """record_fingerprint's value, from the delivered bytes when they are canonical."""
        if self.canonical is not None:
            return fingerprint_canonical_bytes(self.canonical)
        return fingerprint_record(self.record)


@dataclass(frozen=True)
class Rejection:
    """Why a record was not accepted; `detail` names no record content beyond the control number."""

    reason: str
    detail: str
    control_number: str | None = None


def allows_utf8_repair(vendor: VendorConfig) -> bool:
    """The vendor's opt-in to replace invalid UTF-8 with U+FFFD instead of rejecting the record."""
    return vendor.allow_utf8_repair


def prepare_record(
    raw: RawRecord, fmt: RecordFormat, vendor: VendorConfig, allow_utf8_repair: bool | None = None
) -> PreparedRecord | Rejection:
    """Parse, validate and normalize one record; bad content is a Rejection, never an exception.

    `allow_utf8_repair` overrides the vendor setting (the CLI has no vendor of its own).
    """
    repair = allows_utf8_repair(vendor) if allow_utf8_repair is None else allow_utf8_repair
    strictness = Strictness(vendor.marc_strictness)
    try:
        if raw.clipped:
            raise RecordRejected(
                RejectReason.RECORD_TOO_LONG, f"{raw.size} bytes without a record boundary"
            )
        canonical = None
        if fmt == "iso2709":
            record, warnings, exact = _from_iso2709(raw.data, repair, strictness)
            canonical = raw.data if exact else None
        elif fmt == "marcxml":
            record, warnings = _from_marcxml(raw.data, repair, strictness)
        else:
            raise RecordRejected(RejectReason.UNSUPPORTED_FORMAT, f"{fmt} records are not ingested")
        return _finish(record, warnings, vendor, canonical)
    except RecordRejected as exc:
        control = exc.control_number or control_number_of(raw.data, fmt)
        return Rejection(str(exc.reason), exc.detail, control)
    except Exception as exc:  # an unforeseen parser failure must cost one record, not the chunk
        detail = f"record could not be parsed ({type(exc).__name__})"
        return Rejection(RejectReason.UNPARSEABLE.value, detail, control_number_of(raw.data, fmt))


def control_number_of(data: bytes, fmt: RecordFormat) -> str | None:
    """Best-effort 001 of a record that may be broken (for the reject index); None if not found."""
    try:
        if fmt == "marcxml":
            m = _XML_001.search(data)
            return m.group(1).decode("utf-8", "replace").strip() or None if m else None
        pos = 24
        base_text = data[12:17]
        base = int(base_text) if base_text.isdigit() else len(data)
        while pos + 12 <= base and data[pos : pos + 12].isdigit():
            if data[pos : pos + 3] == b"001":
                start = int(base_text) + int(data[pos + 7 : pos + 12])
                end = data.index(b"\x1e", start)
                return data[start:end].decode("ascii").strip() or None
            pos += 12
    except (ValueError, UnicodeDecodeError, IndexError):
        pass
    return None


def _nfc(value: str) -> str:
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def _from_iso2709(
    data: bytes, repair: bool, strictness: Strictness
) -> tuple[pymarc.Record, list[str], bool]:
    """The record, its warnings, and whether `data` is its canonical serialisation."""
    layout = frame_fields(data)
    leader = layout.leader
    charset, charset_warnings = detect_charset(data, leader[9], repair)
    warnings = [*layout.warnings, *charset_warnings]
    if charset is Charset.MARC8:
        warnings.append(RecordWarning.MARC8_CONVERTED)
    kind = format_kind(leader)
    value_decode = decoder_for(charset)
    # MARC-8 keeps escape state per value, so it is decoded subfield by subfield; the others
    # decode a whole field at once and split the text (ASCII is UTF-8; decoded inline, as the
    # call per field showed in profiles).
    by_field = charset is not Charset.MARC8
    errors = "replace" if charset is Charset.UTF8_REPAIRED else "strict"
    fields: list[Field] = []
    normalized = delimiter_dropped = False
    # Bytes that decode to the values unchanged and lie as a writer lays them out.
    exact = layout.contiguous and (charset is Charset.UTF8 or charset is Charset.ASCII)
    for tag, raw_field in layout.fields:
        if tag < "010" and tag.isdigit():
            value = raw_field.decode("utf-8", errors) if by_field else value_decode(raw_field)
            if not value.isascii() and not unicodedata.is_normalized("NFC", value):
                value, normalized = unicodedata.normalize("NFC", value), True
            if "\x1f" in value:
                # A subfield delimiter in a control field, which has no subfields (LoC's
                # BooksAll has 8 in 250,000, ending the 001): XML cannot carry it, so every
                # MARCXML payload of the record would be refused. Dropped, as a stray C0
                # control is, before the 001 becomes the record key.
                value, delimiter_dropped = value.replace("\x1f", ""), True
            warnings.extend(check_control_field(kind, tag, value))
            fields.append(Field(tag=tag, data=value))
            continue
        if by_field:
            text = raw_field.decode("utf-8", errors)
            parts = text.split("\x1f")
            if not text.isascii() and not unicodedata.is_normalized("NFC", text):
                # Normalize per value: NFC across a code/value seam could merge them.
                parts = [parts[0], *(p[:1] + _nfc(p[1:]) for p in parts[1:])]
                normalized = True
            head, delimiters = parts[0], len(parts) - 1
            subfields = [_NEW_TUPLE(Subfield, (p[0], p[1:])) for p in parts[1:] if p]
        else:
            parts_bytes = raw_field.split(b"\x1f")
            head = parts_bytes[0].decode("ascii", "replace")
            # A non-ASCII code byte becomes U+FFFD, which check_data_field rejects.
            subfields = [
                Subfield(chr(p[0]) if p[0] < 0x80 else "\ufffd", value_decode(p[1:]))
                for p in parts_bytes[1:]
                if p
            ]
            delimiters = len(parts_bytes) - 1
        if delimiters == 0 and len(head) > 2:
            raise RecordRejected(
                RejectReason.FIELD_STRUCTURE_INVALID,
                f"field {tag} holds data but no subfield codes",
            )
        indicators = _KEPT_INDICATORS.get(head)
        if indicators is None:
            ind1, ind2, fixes = repair_indicators(tag, head, strictness)
            indicators = Indicators(ind1, ind2)
            if fixes:
                warnings.extend(fixes)
                exact = False
        else:
            ind1, ind2 = indicators
        if delimiters != len(subfields):
            warnings.append(RecordWarning.SUBFIELD_EMPTY)
            exact = False
        if not subfields:
            warnings.append(RecordWarning.DATA_FIELD_WITHOUT_SUBFIELDS)
        codes = "".join([s.code for s in subfields])
        warnings.extend(check_data_field(kind, tag, ind1, ind2, codes))
        fields.append(_data_field(tag, indicators, subfields))
    if normalized:
        warnings.append(RecordWarning.NFC_NORMALIZED)
        exact = False
    controls = _CONTROL_BYTES if charset is Charset.MARC8 else _CONTROL_BYTES_OR_ESC
    if controls.search(data):
        _drop_control_characters(fields)
    if delimiter_dropped or controls.search(data):
        warnings.append(RecordWarning.CONTROL_CHARACTER_REMOVED)
        exact = False
    return _record(leader, fields, warnings), warnings, exact


def _drop_control_characters(fields: list[Field]) -> None:
    for field in fields:
        if field.control_field:
            field.data = (field.data or "").translate(_DROP_CONTROLS)
        else:
            field.subfields = [
                Subfield(s.code, s.value.translate(_DROP_CONTROLS)) for s in field.subfields
            ]


def _data_field(tag: str, indicators: Indicators, subfields: list[Subfield]) -> Field:
    """Field(tag, indicators, subfields) without its argument sniffing, which costs about a
    tenth of the whole parse; the values here are already checked. Same attributes as
    pymarc 5.4's Field.__init__ sets for a data field (a unit test compares the two)."""
    field = _NEW_FIELD(Field)
    field.tag = tag
    field.data = None
    field._indicators = indicators
    field.subfields = subfields
    field.control_field = False
    return field


def _from_marcxml(
    data: bytes, repair: bool, strictness: Strictness
) -> tuple[pymarc.Record, list[str]]:
    parsed, repaired = parse_marcxml_record(data, repair)
    leader = parsed.leader
    kind = format_kind(leader)
    warnings: list[str] = [RecordWarning.UTF8_REPAIRED] if repaired else []
    fields: list[Field] = []
    normalized = False
    for is_control, index in parsed.order:
        if is_control:
            tag, value = parsed.controlfields[index]
            check_tag(tag)
            nfc = _nfc(value)
            normalized = normalized or nfc is not value
            warnings.extend(check_control_field(kind, tag, nfc))
            fields.append(Field(tag=tag, data=nfc))
            continue
        df = parsed.datafields[index]
        codes = "".join(code for code, _ in df.subfields)
        if any(len(code) != 1 for code, _ in df.subfields):
            raise RecordRejected(
                RejectReason.SUBFIELD_CODE_INVALID,
                f"field {df.tag}: a subfield code is not 1 character",
            )
        ind1, ind2, fixes = repair_xml_indicators(df.tag, df.ind1, df.ind2, strictness)
        warnings.extend(fixes)
        warnings.extend(check_data_field(kind, df.tag, ind1, ind2, codes))
        subfields = []
        for code, value in df.subfields:
            nfc = _nfc(value)
            normalized = normalized or nfc is not value
            subfields.append(Subfield(code, nfc))
        if not subfields:
            warnings.append(RecordWarning.DATA_FIELD_WITHOUT_SUBFIELDS)
        fields.append(Field(tag=df.tag, indicators=Indicators(ind1, ind2), subfields=subfields))
    if not fields:
        raise RecordRejected(RejectReason.NO_FIELDS, "record has no fields")
    if normalized:
        warnings.append(RecordWarning.NFC_NORMALIZED)
    return _record(leader, fields, warnings), warnings


def prepare_converted(record: pymarc.Record, vendor: VendorConfig) -> PreparedRecord | Rejection:
    """Validate and normalize a record built by a converter (BIBFRAME -> MARC) like a parsed one."""
    try:
        leader = str(record.leader)
        kind = format_kind(leader)
        warnings: list[str] = []
        fields: list[Field] = []
        for field in record.fields:
            check_tag(field.tag)
            if field.control_field:
                value = _nfc(field.data or "")
                warnings.extend(check_control_field(kind, field.tag, value))
                fields.append(Field(tag=field.tag, data=value))
                continue
            ind1, ind2 = field.indicator1 or " ", field.indicator2 or " "
            codes = "".join(s.code for s in field.subfields)
            warnings.extend(check_data_field(kind, field.tag, ind1, ind2, codes))
            subfields = [Subfield(s.code, _nfc(s.value)) for s in field.subfields]
            fields.append(
                Field(tag=field.tag, indicators=Indicators(ind1, ind2), subfields=subfields)
            )
        return _finish(_record(leader, fields, warnings), warnings, vendor)
    except RecordRejected as exc:
        return Rejection(str(exc.reason), exc.detail, exc.control_number)


def _record(leader: str, fields: list[Field], warnings: list[str]) -> pymarc.Record:
    if leader[5] not in _LEADER_STATUS or leader[6] not in _LEADER_TYPE:
        warnings.append(RecordWarning.LEADER_VALUE)
    # Length and base address are recomputed on output; 09 'a' because values are now Unicode.
    return pymarc.Record(fields=fields, leader=leader[:9] + "a" + leader[10:], force_utf8=True)


def _finish(
    record: pymarc.Record,
    warnings: list[str],
    vendor: VendorConfig,
    canonical: bytes | None = None,
) -> PreparedRecord:
    control = record.get("001")
    control_number = (control.data or "").strip() or None if control is not None else None
    leader = str(record.leader)
    deleted = leader[5] == "d"
    required = vendor.required_fields
    if deleted:
        # A delete only has to say which record goes: vendors often send stubs without a title.
        required = [entry for entry in required if all(t < "010" for t in entry.split("/"))]
    missing = missing_required(format_kind(leader), required, {f.tag for f in record.fields})
    if "001" in missing:
        # Without a control number the record can still be matched (and keyed) on another of
        # the vendor's match points; only a record with none of them cannot be placed.
        if match_point_key(record, vendor.match_points) is None:
            others = [p for p in vendor.match_points if p != "001+003"]
            raise RecordRejected(
                RejectReason.NO_MATCH_POINT,
                "no 001 and none of the vendor's other match points "
                f"({', '.join(others) or 'none configured'})",
            )
        missing.remove("001")
        warnings.append(RecordWarning.NO_CONTROL_NUMBER)
    if missing:
        raise RecordRejected(
            RejectReason.MISSING_REQUIRED_FIELD,
            f"required field(s) {', '.join(missing)} missing",
            control_number,
        )
    # Canonical bytes are the record as ISO 2709 already: only their total length can be over
    # (each field's length came from a four-digit directory entry).
    if canonical is None or len(canonical) > MAX_RECORD_BYTES:
        overflow = iso2709_overflow(record.fields)
        if overflow is not None:
            raise RecordRejected(RejectReason.TOO_LONG_FOR_ISO2709, overflow, control_number)
    return PreparedRecord(
        record, control_number, deleted, tuple(dict.fromkeys(warnings)), canonical
    )
