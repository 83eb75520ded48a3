"""One MARCXML `<record>` element (bytes, as framed from the file) parsed into leader and fields."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree  # type: ignore[import-untyped]

from catalog_sync.marc.errors import RecordRejected
from catalog_sync.marc.reasons import RejectReason

MARCXML_NS = "http://www.loc.gov/MARC21/slim"

_PREFIX_USE = re.compile(rb"</?([A-Za-z_][\w.-]*):")
_PREFIX_DECL = re.compile(rb"xmlns:([A-Za-z_][\w.-]*)\s*=")
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=True, remove_comments=True, remove_pis=True
)


@dataclass(frozen=True, slots=True)
class XmlDataField:
    tag: str
    ind1: str
    ind2: str
    subfields: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class XmlRecord:
    leader: str
    controlfields: list[tuple[str, str]]
    datafields: list[XmlDataField]
    order: list[tuple[bool, int]]  # (is_control, index) in document order


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _wrapped(data: bytes) -> bytes:
    """The record inside a root that declares any prefix the file declared on an outer element."""
    used = set(_PREFIX_USE.findall(data)) - set(_PREFIX_DECL.findall(data)) - {b"xml"}
    if not used:
        return data
    decls = b" ".join(b'xmlns:%s="%s"' % (p, MARCXML_NS.encode()) for p in sorted(used))
    return b"<wrap " + decls + b">" + data + b"</wrap>"


def parse_marcxml_record(data: bytes, allow_utf8_repair: bool = False) -> tuple[XmlRecord, bool]:
    """(record, repaired) for one `<record>` element; raises RecordRejected when it is unusable."""
    repaired = False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not allow_utf8_repair:
            raise RecordRejected(
                RejectReason.INVALID_UTF8, f"invalid UTF-8 at record byte {exc.start}"
            ) from exc
        data = data.decode("utf-8", "replace").encode("utf-8")
        repaired = True
    try:
        root = etree.fromstring(_wrapped(data), _PARSER)
    except etree.XMLSyntaxError as exc:
        # Only the parser's message (line/column and what is wrong), never the record text.
        raise RecordRejected(RejectReason.XML_MALFORMED, f"not well-formed XML: {exc.msg}") from exc
    element = root if _local(root.tag) == "record" else root[0]
    leader: str | None = None
    controlfields: list[tuple[str, str]] = []
    datafields: list[XmlDataField] = []
    order: list[tuple[bool, int]] = []
    for child in element:
        name = _local(child.tag)
        if name == "leader":
            leader = child.text or ""
        elif name == "controlfield":
            order.append((True, len(controlfields)))
            controlfields.append((child.get("tag", ""), child.text or ""))
        elif name == "datafield":
            subfields = [
                (sub.get("code", ""), sub.text or "")
                for sub in child
                if _local(sub.tag) == "subfield"
            ]
            order.append((False, len(datafields)))
            datafields.append(
                XmlDataField(
                    child.get("tag", ""), child.get("ind1", ""), child.get("ind2", ""), subfields
                )
            )
    if leader is None and not order:
        raise RecordRejected(
            RejectReason.NOT_A_MARC_RECORD, "<record> element holds no leader or fields"
        )
    if leader is None or len(leader) != 24:
        length = "missing" if leader is None else f"{len(leader)} characters"
        raise RecordRejected(RejectReason.LEADER_INVALID, f"leader is {length}, not 24 characters")
    return XmlRecord(leader, controlfields, datafields, order), repaired
