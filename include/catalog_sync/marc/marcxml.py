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


def _namespace(tag: object) -> str:
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _unknown(element: object, where: str) -> RecordRejected:
    # Only the element's name (which the vendor's software wrote), never record content.
    name = _local(getattr(element, "tag", ""))[:40]
    return RecordRejected(
        RejectReason.MARCXML_UNKNOWN_ELEMENT,
        f"<{name}> {where} is not a MARCXML element; its content cannot be placed",
    )


def _has_text(text: str | None) -> bool:
    return bool(text and text.strip())


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
    # Elements in the record's own namespace (MARCXML's, or none) are MARC; another namespace
    # is a foreign extension and is not ours to read.
    marc_ns = _namespace(element.tag)
    leader: str | None = None
    controlfields: list[tuple[str, str]] = []
    datafields: list[XmlDataField] = []
    order: list[tuple[bool, int]] = []
    for child in element:
        if _namespace(child.tag) != marc_ns:
            continue
        name = _local(child.tag)
        if name == "leader":
            leader = child.text or ""
        elif name == "controlfield":
            order.append((True, len(controlfields)))
            controlfields.append((child.get("tag", ""), child.text or ""))
        elif name == "datafield":
            subfields = _subfields(child, marc_ns)
            order.append((False, len(datafields)))
            datafields.append(
                XmlDataField(
                    child.get("tag", ""), child.get("ind1", ""), child.get("ind2", ""), subfields
                )
            )
        else:
            raise _unknown(child, "in a record")
    if leader is None and not order:
        raise RecordRejected(
            RejectReason.NOT_A_MARC_RECORD, "<record> element holds no leader or fields"
        )
    if leader is None or len(leader) != 24:
        length = "missing" if leader is None else f"{len(leader)} characters"
        raise RecordRejected(RejectReason.LEADER_INVALID, f"leader is {length}, not 24 characters")
    return XmlRecord(leader, controlfields, datafields, order), repaired


def _subfields(datafield: etree._Element, marc_ns: str) -> list[tuple[str, str]]:
    """(code, value) of a datafield; content outside <subfield> elements rejects the record,
    as ISO 2709 data before the first subfield code does."""
    tag = datafield.get("tag", "")
    if _has_text(datafield.text):
        raise RecordRejected(
            RejectReason.FIELD_STRUCTURE_INVALID, f"field {tag} holds text outside <subfield>"
        )
    subfields: list[tuple[str, str]] = []
    for sub in datafield:
        if _has_text(sub.tail):
            raise RecordRejected(
                RejectReason.FIELD_STRUCTURE_INVALID, f"field {tag} holds text outside <subfield>"
            )
        if _namespace(sub.tag) != marc_ns:
            continue
        if _local(sub.tag) != "subfield":
            raise _unknown(sub, f"in field {tag}")
        subfields.append((sub.get("code", ""), sub.text or ""))
    return subfields
