"""Raw ISO 2709 framing for masking records pymarc cannot parse.

The masker must redact what it cannot parse, so it reads the leader, directory and fields itself
rather than through pymarc; these helpers accept only what is plainly structure (digits, tags) and
answer None otherwise, so the caller falls back to redacting every content run.
"""

from __future__ import annotations

FIELD_TERMINATOR = b"\x1e"


def plausible_leader(leader: bytes) -> bool:
    """Leader bytes that hold lengths and codes, not content (so keeping them leaks nothing)."""
    return (
        len(leader) == 24
        and all(0x20 <= b < 0x7F for b in leader)
        and all(chr(b).isdigit() or b == 0x20 for b in leader[0:5])
        and all(chr(b).isdigit() or b == 0x20 for b in leader[20:24])
    )


def directory_entries(directory: bytes) -> list[tuple[bytes, bytes, bytes]] | None:
    """(tag, length, start) per 12-byte entry, or None when it is not a directory."""
    if not directory or len(directory) % 12:
        return None
    entries = [
        (directory[i : i + 3], directory[i + 3 : i + 7], directory[i + 7 : i + 12])
        for i in range(0, len(directory), 12)
    ]
    for tag, length, start in entries:
        if not (tag.isalnum() and tag.isascii() and length.isdigit() and start.isdigit()):
            return None
    return entries


def fields_by_offset(
    entries: list[tuple[bytes, bytes, bytes]], area: bytes
) -> list[tuple[bytes, bytes]] | None:
    """(tag, content without its terminator) per entry, or None when an entry does not fit."""
    fields = []
    for tag, length, start in entries:
        begin, size = int(start), int(length)
        end = begin + size
        if size < 1 or end > len(area) or area[end - 1 : end] != FIELD_TERMINATOR:
            return None
        fields.append((tag, area[begin : end - 1]))
    return fields


def build_record(leader: bytes, fields: list[tuple[bytes, bytes]]) -> bytes:
    """A record from `leader` and fields, with lengths and base address recomputed."""
    directory = bytearray()
    area = bytearray()
    for tag, content in fields:
        length = len(content) + 1
        directory += tag + b"%04d%05d" % (min(length, 9999), min(len(area), 99999))
        area += content + FIELD_TERMINATOR
    base = 24 + len(directory) + 1
    total = min(base + len(area) + 1, 99999)
    new_leader = b"%05d" % total + leader[5:12] + b"%05d" % base + leader[17:24]
    return new_leader + bytes(directory) + FIELD_TERMINATOR + bytes(area)
