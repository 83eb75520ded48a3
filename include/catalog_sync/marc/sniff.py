"""Which record format a vendor file holds, judged from its bytes and never from its name."""

from __future__ import annotations

import re
from pathlib import Path

from catalog_sync.marc.errors import EmptyFileError, NotMarcError
from catalog_sync.marc.framing import skip_padding
from catalog_sync.models import RecordFormat

# Enough to see an XML prolog plus a large OAI/collection header before the first record.
_HEAD_BYTES = 1 << 20

_MARCXML_NS = b"http://www.loc.gov/MARC21/slim"
_BIBFRAME_NS = b"http://id.loc.gov/ontologies/bibframe/"
_RDF_NS = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_MARCXML_ELEMENT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:leader|controlfield|datafield)[\s>/]")
_RECORD_ELEMENT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?record[\s>]")
_ROOT_ELEMENT = re.compile(rb"<([A-Za-z_][\w.:-]*)")

# File signatures an operator recognises, so the message can say what was sent instead.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image bytes"),
    (b"\xff\xd8\xff", "JPEG image bytes"),
    (b"GIF87a", "GIF image bytes"),
    (b"GIF89a", "GIF image bytes"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (unpack it before delivery)"),
    (b"\x1f\x8b", "gzip-compressed data (decompress it before delivery)"),
    (b"BZh", "bzip2-compressed data (decompress it before delivery)"),
    (b"\xfd7zXZ\x00", "xz-compressed data (decompress it before delivery)"),
    (b"\xff\xfe", "UTF-16 text (MARC must be 8-bit)"),
    (b"\xfe\xff", "UTF-16 text (MARC must be 8-bit)"),
)

_LEADING_BLANKS = b" \t\r\n"
_UTF8_BOM = b"\xef\xbb\xbf"


def _read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(_HEAD_BYTES)


def looks_like_leader(head: bytes) -> bool:
    """True when bytes start like an ISO 2709 leader: a 5-digit length and MARC structure nearby."""
    if len(head) < 24 or not head[:5].isdigit():
        return False
    # A leader alone is not proof; a base address or a field/record terminator nearby is.
    return head[12:17].isdigit() or b"\x1e" in head[:100_000] or b"\x1d" in head[:100_000]


def _describe(head: bytes) -> str:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    body = head.lstrip(_UTF8_BOM).lstrip(_LEADING_BLANKS)
    if body[:1] in (b"{", b"["):
        return "JSON text (MARC-in-JSON is not accepted; send ISO 2709 or MARCXML)"
    sample = body[:512]
    if sample and all(b in b"\t\r\n" or 0x20 <= b < 0x7F or b >= 0x80 for b in sample):
        return "plain text without a MARC leader"
    return f"binary data (first bytes {head[:8].hex(' ')})"


def detect_format(path: Path) -> RecordFormat:
    """ISO 2709, MARCXML or BIBFRAME RDF/XML, from the file's content.

    Raises EmptyFileError for a 0-byte file and NotMarcError, naming what the file looks like
    instead, for anything else.
    """
    path = Path(path)
    head = _read_head(path)
    if not head:
        raise EmptyFileError(f"vendor file {path.name} is empty (0 bytes)")
    # The same filler the framing skips between records (NUL, Ctrl-Z, whitespace, a byte order
    # mark) may stand before the first one: judge the file by what follows it.
    body = skip_padding(head)
    if looks_like_leader(body):
        return "iso2709"
    if body.startswith(b"<"):
        if _BIBFRAME_NS in head and _RDF_NS in head:
            return "bibframe"
        if _RECORD_ELEMENT.search(head) and (_MARCXML_NS in head or _MARCXML_ELEMENT.search(head)):
            return "marcxml"
        first = _ROOT_ELEMENT.search(body)
        root = first.group(1).decode("ascii", "replace") if first else "?"
        raise NotMarcError(
            f"vendor file {path.name} is not MARC: XML with root element <{root}> "
            "holds no MARCXML records or BIBFRAME description"
        )
    raise NotMarcError(f"vendor file {path.name} is not MARC: starts with {_describe(head)}")
