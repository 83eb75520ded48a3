"""Record boundaries in a byte range of a vendor file, found by a streaming scan in fixed blocks.

ISO 2709 records end at the record terminator 0x1D. MARCXML records are `<record>` elements
(with or without a namespace prefix); a `<record>` nested in another one (OAI-PMH wraps a MARC
record in its own `<record>`) stays inside its outer span.

Bytes after the last complete record that are not just padding (whitespace, NUL, Ctrl-Z) form one
final span of their own, so the reader can reject them with a reason instead of losing them
silently; padding between or after records is not a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from catalog_sync.models import RecordFormat

RECORD_TERMINATOR = b"\x1d"
FIELD_TERMINATOR = b"\x1e"
SUBFIELD_DELIMITER = b"\x1f"

BLOCK_SIZE = 1 << 20
# Longest span kept in memory: ISO 2709 caps a record at 99,999 bytes; MARCXML of a very long
# record is a few times that. Anything longer is garbage (e.g. a file whose terminators were
# stripped): its head is kept for the reject file and the rest is skipped, never loaded.
MAX_SPAN_BYTES = 4 << 20

_PADDING = b" \t\r\n\x00\x1a"
_UTF8_BOM = b"\xef\xbb\xbf"
_XML_TAG = re.compile(rb"<(/?)(?:[A-Za-z_][\w.-]*:)?record(?:(\s*>)|[\s>/])")
# Longest possible partial tag left at a block edge (a prefix name is short in practice).
_XML_CARRY = 256
_MARC_CONTENT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:leader|controlfield|datafield)[\s>/]")


@dataclass(frozen=True)
class Span:
    """One framed record: absolute offset, its bytes (possibly only a head), its full length."""

    offset: int
    data: bytes
    length: int

    @property
    def clipped(self) -> bool:
        return self.length > len(self.data)


def is_padding(data: bytes) -> bool:
    return not data.strip(_PADDING)


def skip_padding(data: bytes) -> bytes:
    """`data` without the padding (and a UTF-8 byte order mark) before its first record."""
    body = data.lstrip(_PADDING)
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :].lstrip(_PADDING)
    return body


def iter_spans(fh: BinaryIO, fmt: RecordFormat, start: int, end: int) -> Iterator[Span]:
    """Every record span that begins in [start, end), reading only that range in blocks."""
    if fmt == "iso2709":
        return _iso_spans(fh, start, end)
    if fmt == "marcxml":
        return _xml_spans(fh, start, end)
    raise ValueError(f"no record framing for format {fmt!r}")


def _blocks(fh: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    fh.seek(start)
    remaining = end - start
    while remaining > 0:
        block = fh.read(min(BLOCK_SIZE, remaining))
        if not block:
            return
        remaining -= len(block)
        yield block


class _Accumulator:
    """Bytes of the span being framed, capped at MAX_SPAN_BYTES while still counting its length."""

    __slots__ = ("kept", "length", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.kept = 0
        self.length = 0

    def add(self, data: bytes) -> None:
        self.length += len(data)
        room = MAX_SPAN_BYTES - self.kept
        if room > 0:
            piece = data[:room]
            self.parts.append(piece)
            self.kept += len(piece)

    def take(self) -> tuple[bytes, int]:
        data, length = b"".join(self.parts), self.length
        self.parts, self.kept, self.length = [], 0, 0
        return data, length


def _iso_spans(fh: BinaryIO, start: int, end: int) -> Iterator[Span]:
    acc = _Accumulator()
    span_start = start
    pos = start
    for block in _blocks(fh, start, end):
        i = 0
        while True:
            j = block.find(RECORD_TERMINATOR, i)
            if j == -1:
                break
            acc.add(block[i : j + 1])
            span = _iso_span(span_start, *acc.take())
            if span is not None:
                yield span
            i = j + 1
            span_start = pos + i
        if i < len(block):
            acc.add(block[i:])
        pos += len(block)
    data, length = acc.take()
    if length and not is_padding(data):
        span = _iso_span(span_start, data, length)
        if span is not None:
            yield span


def _iso_span(offset: int, data: bytes, length: int) -> Span | None:
    """Drop padding before a record (some exports put a newline after each terminator, some
    editors a UTF-8 byte order mark before the first record)."""
    body = skip_padding(data)
    if not body or body == RECORD_TERMINATOR:
        return None
    skipped = len(data) - len(body)
    return Span(offset + skipped, body, length - skipped)


def _xml_spans(fh: BinaryIO, start: int, end: int) -> Iterator[Span]:
    """Innermost `<record>` elements: a record that holds other records is a wrapper (OAI-PMH,
    SRU, a bib+holdings pair) and is not itself a record.

    A `<record>` start tag that appears inside an open record which already holds MARC content
    means that record lost its end tag: it is cut there and framed as a (broken) span, so it is
    rejected rather than merged into its neighbour. The decision depends only on the bytes since
    the open record began, so a chunk read on its own frames exactly as the whole-file scan did.
    """
    acc = _Accumulator()
    span_start = -1  # absolute offset of the open record, -1 when none is open
    buf = b""
    buf_pos = start  # absolute offset of buf[0]
    blocks = _blocks(fh, start, end)
    exhausted = False
    while not exhausted:
        block = next(blocks, None)
        if block is None:
            exhausted = True
        else:
            buf += block
        # Tags starting in the last _XML_CARRY bytes may be cut; they wait for the next block.
        limit = len(buf) if exhausted else max(0, len(buf) - _XML_CARRY)
        consumed = 0  # bytes of buf already handed to the accumulator (or skipped)
        for m in _XML_TAG.finditer(buf):
            if m.start() >= limit:
                break
            closing = bool(m.group(1))
            if closing:
                if m.group(2) is None or span_start < 0:
                    continue  # a wrapper's end tag, or "</record" without ">"
                acc.add(buf[consumed : m.end()])
                data, length = acc.take()
                yield Span(span_start, data, length)
                span_start, consumed = -1, m.end()
                continue
            if buf[m.end() - 1 : m.end()] == b"/" and buf[m.end() : m.end() + 1] == b">":
                continue  # <record/>: empty element, holds nothing
            if span_start >= 0:
                acc.add(buf[consumed : m.start()])
                data, length = acc.take()
                if _MARC_CONTENT.search(data):
                    yield Span(span_start, data, length)
            span_start, consumed = buf_pos + m.start(), m.start()
        keep_from = limit if exhausted else max(consumed, limit)
        if span_start >= 0:
            acc.add(buf[consumed:keep_from])
        buf = buf[keep_from:]
        buf_pos += keep_from
    if span_start >= 0:
        acc.add(buf)
        data, length = acc.take()
        yield Span(span_start, data, length)
