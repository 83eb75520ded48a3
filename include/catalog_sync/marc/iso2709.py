"""One ISO 2709 record's leader, directory and fields: checked, and recovered where possible."""

from __future__ import annotations

from dataclasses import dataclass

from pymarc import Field

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.reasons import RecordWarning, RejectReason

LEADER_LEN = 24
ENTRY_LEN = 12
FT = 0x1E
RT = 0x1D


@dataclass(frozen=True, slots=True)
class RecordLayout:
    """A record's leader (as delivered) and its fields as (tag, bytes without terminator).

    `contiguous`: the directory lists the fields in the order they lie, back to back from the
    base address to the record terminator, i.e. the bytes are laid out as a writer would lay
    them out again (catalog_sync.marc.fastprint then hashes them as they are).
    """

    leader: str
    fields: list[tuple[str, bytes]]
    warnings: tuple[str, ...]
    contiguous: bool = False


def frame_fields(data: bytes) -> RecordLayout:
    """Check leader and directory against the bytes and cut the fields out.

    Raises RecordRejected when the record cannot be read. A directory whose entries do not land
    on field terminators is replaced by the terminators themselves when the directory still
    names one tag per field ("directory_recovered"), so the record is kept and flagged.
    """
    if len(data) < LEADER_LEN or not data[:LEADER_LEN].isascii():
        raise RecordRejected(
            RejectReason.LEADER_INVALID, "leader is shorter than 24 bytes or not ASCII"
        )
    leader = data[:LEADER_LEN].decode("ascii")
    if b"\x1e" not in data and b"\x1f" not in data:
        # Typical of a transfer that dropped control characters: the whole file runs together.
        raise RecordRejected(
            RejectReason.SEPARATORS_MISSING,
            f"{len(data)} bytes without any field, subfield or record separator "
            "(stripped in transfer?)",
        )
    if data[-1] != RT:
        declared_len = data[:5]
        if declared_len.isdigit() and int(declared_len) > len(data):
            raise RecordRejected(
                RejectReason.RECORD_TERMINATOR_MISSING,
                f"truncated record: leader says {int(declared_len)} bytes, {len(data)} present",
            )
        raise RecordRejected(
            RejectReason.RECORD_TERMINATOR_MISSING,
            f"{len(data)} bytes without a record terminator (truncated record or trailing bytes)",
        )
    warnings: list[str] = []
    declared = leader[:5]
    if not declared.isdigit() or int(declared) != len(data):
        warnings.append(RecordWarning.RECORD_LENGTH_MISMATCH)
    if leader[20:24] != "4500":
        warnings.append(RecordWarning.LEADER_ENTRY_MAP)
    if leader[10:12] != "22":
        warnings.append(RecordWarning.LEADER_VALUE)

    base_text = leader[12:17]
    base = int(base_text) if base_text.isdigit() else -1
    if base <= LEADER_LEN or base >= len(data) or data[base - 1] != FT:
        # The directory still ends at the first field terminator after the leader.
        first_ft = data.find(b"\x1e", LEADER_LEN)
        if first_ft == -1:
            raise RecordRejected(
                RejectReason.SEPARATORS_MISSING, "no field terminator in the record"
            )
        base = first_ft + 1
        warnings.append(RecordWarning.BASE_ADDRESS_INVALID)

    directory = data[LEADER_LEN : base - 1]
    found = _fields_from_directory(data, directory, base)
    if found is None:
        fields, contiguous = _fields_from_terminators(data, directory, base), False
        warnings.append(RecordWarning.DIRECTORY_RECOVERED)
    else:
        fields, contiguous = found
    if not fields:
        raise RecordRejected(RejectReason.NO_FIELDS, "record has no fields")
    return RecordLayout(leader, fields, tuple(warnings), contiguous)


def _fields_from_directory(
    data: bytes, directory: bytes, base: int
) -> tuple[list[tuple[str, bytes]], bool] | None:
    """Fields as the directory places them, and whether they lie back to back in directory
    order up to the record terminator (RecordLayout.contiguous); None when any entry is
    unusable."""
    if len(directory) % ENTRY_LEN or not directory.isascii():
        return None
    text = directory.decode("ascii")
    limit = len(data) - 1
    fields: list[tuple[str, bytes]] = []
    contiguous = True
    next_start = base
    for i in range(0, len(text), ENTRY_LEN):
        length_text = text[i + 3 : i + 7]
        start_text = text[i + 7 : i + 12]
        if not (length_text.isdigit() and start_text.isdigit()):
            return None
        start = base + int(start_text)
        contiguous = contiguous and start == next_start
        next_start = start + int(length_text)
        end = next_start - 1  # index of the field terminator
        if end < start or end >= limit or data[end] != FT:
            return None
        fields.append((text[i : i + 3], data[start:end]))
    return fields, contiguous and next_start == limit


def _fields_from_terminators(data: bytes, directory: bytes, base: int) -> list[tuple[str, bytes]]:
    """Fields cut at the field terminators, tagged in directory order; rejects if they disagree."""
    pieces = data[base:-1].split(b"\x1e")
    if pieces and not pieces[-1]:
        pieces.pop()  # the last field's terminator sits just before the record terminator
    usable = len(directory) - len(directory) % ENTRY_LEN
    tags = [directory[i : i + 3] for i in range(0, usable, ENTRY_LEN)]
    if len(tags) != len(pieces) or not all(t.isascii() and t.isalnum() for t in tags):
        raise RecordRejected(
            RejectReason.DIRECTORY_INVALID,
            f"directory names {len(tags)} fields but the record holds {len(pieces)}",
        )
    return [(t.decode("ascii"), piece) for t, piece in zip(tags, pieces, strict=True)]


MAX_RECORD_BYTES = 99_999  # leader/00-04: five digits
MAX_FIELD_BYTES = 9_999  # a directory entry's field length: four digits


def _encoded_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8"))


def iso2709_overflow(fields: list[Field]) -> str | None:
    """Why these fields cannot be written as one ISO 2709 record in UTF-8, or None if they can.

    The one decision `validate`, `normalize` and the DAG all take (through prepare_record): a
    record that an ISO 2709 export, an ILS's MARC export or its indexer cannot carry is refused
    at the door, whatever format it came in, instead of being accepted by one and refused by
    another. Counted from the values, without serialising the record.
    """
    total = LEADER_LEN + 1 + 1  # leader, directory terminator, record terminator
    for field in fields:
        if field.control_field:
            length = _encoded_len(field.data or "") + 1
        else:
            length = 3 + sum(2 + _encoded_len(s.value) for s in field.subfields)
        if length > MAX_FIELD_BYTES:
            return f"field {field.tag} is {length:,} bytes in ISO 2709 (at most 9,999)"
        total += ENTRY_LEN + length
    if total > MAX_RECORD_BYTES:
        return f"record is {total:,} bytes in ISO 2709 (at most 99,999)"
    return None
