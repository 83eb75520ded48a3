"""Identifiers (010-035) and classification (050-084) of the Instance and its Work."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.mapping.context import MappingContext, org_code, source_code
from catalog_sync.bibframe.rdfxml import (
    RDF,
    Element,
    classes,
    code,
    literal,
    nodes,
    preferred_literals,
    props,
)

# Identifier class -> (tag, ind1, ind2, $2 source or "").
_IDENTIFIERS: dict[str, tuple[str, str, str, str]] = {
    "Lccn": ("010", " ", " ", ""),
    "Nbn": ("015", " ", " ", ""),
    "CopyrightNumber": ("017", " ", " ", ""),
    "Isbn": ("020", " ", " ", ""),
    "Issn": ("022", " ", " ", ""),
    "Isrc": ("024", "0", " ", ""),
    "Upc": ("024", "1", " ", ""),
    "Ismn": ("024", "2", " ", ""),
    "Ean": ("024", "3", " ", ""),
    "Doi": ("024", "7", " ", "doi"),
    "Hdl": ("024", "7", " ", "hdl"),
    "Urn": ("024", "7", " ", "urn"),
    "AudioIssueNumber": ("028", "0", "2", ""),
    "MatrixNumber": ("028", "1", "2", ""),
    "MusicPlate": ("028", "2", "2", ""),
    "MusicPublisherNumber": ("028", "3", "2", ""),
    "VideoRecordingNumber": ("028", "4", "2", ""),
    "PublisherNumber": ("028", "5", "2", ""),
    "MusicDistributorNumber": ("028", "6", "2", ""),
    "Coden": ("030", " ", " ", ""),
    "PostalRegistration": ("032", " ", " ", ""),
    "OclcNumber": ("035", " ", " ", ""),
    "Local": ("035", " ", " ", ""),
}
_CLASSIFICATION_TAG = {
    "ClassificationLcc": "050",
    "ClassificationNlm": "060",
    "ClassificationNal": "070",
    "ClassificationUdc": "080",
    "ClassificationDdc": "082",
}


def identifiers(ctx: MappingContext) -> None:
    for owner, prefix in ((ctx.inst, "instance"), (ctx.work, "work")):
        for n in nodes(owner, "identifiedBy"):
            if n.element is None:
                ctx.unmapped[f"{prefix}.identifiedBy"] += 1
                continue
            cls = classes(n.element) & (set(_IDENTIFIERS) | {"IssnL"})
            if not cls:
                names = "/".join(sorted(classes(n.element)))
                ctx.unmapped[f"{prefix}.identifiedBy.{names}"] += 1
                continue
            _identifier(ctx, sorted(cls)[0], n.element)


def _identifier(ctx: MappingContext, cls: str, el: Element) -> None:
    value = literal(el, "value", RDF)
    if cls == "Lccn" and value:
        # An LCCN's leading blanks are part of its structure (prefix positions).
        value = next((p.text.rstrip() for p in props(el, "value", RDF) if p.text), value)
    if not value:
        return
    if cls == "IssnL":
        ctx.add("022", " ", " ", [Subfield("l", value)])
        return
    tag, ind1, ind2, source = _IDENTIFIERS[cls]
    statuses = {code(n) for n in nodes(el, "status")}
    invalid = bool(statuses & {"cancinv", "invalid", "incorrect"})
    qualifiers = preferred_literals(el, "qualifier")
    assigners = nodes(el, "assigner")
    assigner = org_code(assigners[0]) if assigners else None
    if tag == "035":
        prefix = "OCoLC" if cls == "OclcNumber" else assigner
        ctx.add(tag, ind1, ind2, [Subfield("a", f"({prefix}){value}" if prefix else value)])
        return
    # 022 tells an incorrect ISSN ($y) from a cancelled one ($z); other fields have only $z.
    wrong = "y" if tag == "022" and "incorrect" in statuses else "z"
    subs = [Subfield(wrong if invalid else "a", value)]
    if tag == "028" and assigner:
        subs.append(Subfield("b", assigner))
    if tag in ("020", "024", "028"):
        subs += [Subfield("q", q) for q in qualifiers]
    if source:
        subs.append(Subfield("2", source))
    ctx.add(tag, ind1, ind2, subs)


def classifications(ctx: MappingContext) -> None:
    for n in nodes(ctx.work, "classification"):
        el = n.element
        if el is None:
            ctx.unmapped["work.classification"] += 1
            continue
        cls = classes(el)
        portion = literal(el, "classificationPortion")
        item = literal(el, "itemPortion")
        source = source_code(el)
        tag = next((t for c, t in _CLASSIFICATION_TAG.items() if c in cls), "084")
        if not portion or (tag == "084" and not source):
            ctx.unmapped["work.classification.incomplete"] += 1
            continue
        by_lc = any((org_code(a) or "").lower() == "dlc" for a in nodes(el, "assigner"))
        subs = [Subfield("a", portion), Subfield("b", item or "")]
        if tag == "082":
            abridged = (literal(el, "edition") or "").lower().startswith("abridged")
            subs.append(Subfield("2", source or ""))
            ctx.add(tag, "1" if abridged else "0", "0" if by_lc else "4", subs)
        elif tag == "084":
            ctx.add(tag, " ", " ", [*subs, Subfield("2", source or "")])
        elif tag in ("050", "060", "070"):
            ind2 = "0" if by_lc else "4"
            ctx.add(tag, " " if tag != "070" else "0", ind2 if tag != "070" else " ", subs)
        else:
            ctx.add(tag, " ", " ", subs)
