"""Stable codes for why a record was rejected and what was flagged on an accepted one."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why a record was not accepted; these strings appear in reports and reject indexes."""

    RECORD_TOO_LONG = "record_too_long"  # megabytes without a record terminator
    RECORD_TERMINATOR_MISSING = "record_terminator_missing"  # truncated record or trailing bytes
    LEADER_INVALID = "leader_invalid"
    SEPARATORS_MISSING = "separators_missing"  # no field terminator at all
    DIRECTORY_INVALID = "directory_invalid"  # broken and not recoverable from the terminators
    NO_FIELDS = "no_fields"
    TAG_INVALID = "tag_invalid"
    INDICATOR_INVALID = "indicator_invalid"
    SUBFIELD_CODE_INVALID = "subfield_code_invalid"
    FIELD_STRUCTURE_INVALID = "field_structure_invalid"  # data before the first subfield code
    INVALID_UTF8 = "invalid_utf8"
    UNKNOWN_CHARSET = "unknown_charset"  # high-bit bytes that are neither UTF-8 nor MARC-8
    MARC8_INVALID = "marc8_invalid"
    XML_MALFORMED = "xml_malformed"
    NOT_A_MARC_RECORD = "not_a_marc_record"  # an XML <record> holding no MARC content
    MISSING_REQUIRED_FIELD = "missing_required_field"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_LONG_FOR_ISO2709 = (
        "too_long_for_iso2709"  # over 99,999 bytes or a field over 9,999 (iso2709_overflow)
    )
    MARCXML_UNKNOWN_ELEMENT = (
        "marcxml_unknown_element"  # e.g. <datafeild>: its content would be lost without a word
    )
    NO_MATCH_POINT = "no_match_point"  # no 001 and none of the vendor's other match points
    PAYLOAD_INVALID = "payload_invalid"  # the NormalizedRecord model refused the record
    UNPARSEABLE = "unparseable"  # last resort: an unexpected parser failure on odd bytes


class RecordWarning(StrEnum):
    """Something repaired or unusual on an accepted record; counted, never a rejection."""

    RECORD_LENGTH_MISMATCH = "record_length_mismatch"
    BASE_ADDRESS_INVALID = "base_address_invalid"
    DIRECTORY_RECOVERED = "directory_recovered"
    LEADER_ENTRY_MAP = "leader_entry_map"  # leader/20-23 not 4500
    LEADER_VALUE = "leader_value"  # leader/05, /06 or /10-11 outside MARC 21
    LEADER09_SAYS_MARC8_BYTES_UTF8 = "leader09_marc8_but_utf8"
    LEADER09_SAYS_UTF8_BYTES_MARC8 = "leader09_utf8_but_marc8"
    MARC8_CONVERTED = "marc8_converted"
    UTF8_REPAIRED = "utf8_repaired"
    NFC_NORMALIZED = "nfc_normalized"
    TAG_UNDEFINED = "tag_undefined"
    TAG_OBSOLETE = "tag_obsolete"
    INDICATOR_UNDEFINED = "indicator_undefined"
    INDICATOR_OBSOLETE = "indicator_obsolete"
    SUBFIELD_UNDEFINED = "subfield_undefined"
    SUBFIELD_OBSOLETE = "subfield_obsolete"
    SUBFIELD_EMPTY = "subfield_empty"
    DATA_FIELD_WITHOUT_SUBFIELDS = "data_field_without_subfields"
    CONTROL_FIELD_LENGTH = "control_field_length"
    CONTROL_CHARACTER_REMOVED = "control_character_removed"
    # Lenient repairs (vendor marc_strictness: lenient); strict reading rejects these records.
    INDICATOR_BLANKED = "indicator_blanked"  # a bad or missing indicator became a blank
    INDICATOR_STRAY_BYTE_DROPPED = "indicator_stray_byte_dropped"  # 3 bytes before the first $
    # No 001: the record is matched on another of the vendor's match points (035, 020, 022).
    NO_CONTROL_NUMBER = "no_control_number"


# Warnings that mean bytes were changed to keep a record strict reading would have rejected.
REPAIR_WARNINGS = frozenset(
    {RecordWarning.INDICATOR_BLANKED, RecordWarning.INDICATOR_STRAY_BYTE_DROPPED}
)
