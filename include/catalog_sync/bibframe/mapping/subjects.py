"""Subjects: 6XX subject headings from bf:subject and 655 genre/form from bf:genreForm."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping.context import MappingContext, authority_links, marc_key
from catalog_sync.bibframe.rdfxml import (
    MADS,
    RDFS,
    Element,
    classes,
    code,
    label,
    literal,
    nodes,
    uri_tail,
)

_SUBJECT_TAG = [
    ({"Person", "PersonalName", "Family", "FamilyName"}, "600"),
    ({"Organization", "CorporateName", "Jurisdiction"}, "610"),
    ({"Meeting", "ConferenceName"}, "611"),
    ({"Work", "Hub", "NameTitle", "Title"}, "630"),
    ({"Temporal"}, "648"),
    ({"Place", "Geographic", "HierarchicalGeographic"}, "651"),
    ({"GenreForm"}, "655"),
    ({"Topic"}, "650"),
]
_SUBDIVISION = {"Topic": "x", "Geographic": "z", "Place": "z", "GenreForm": "v", "Temporal": "y"}
_SUBJECT_SOURCE_IND2 = {
    "lcsh": "0", "subjects": "0", "names": "0", "lcshac": "1", "childrensSubjects": "1",
    "mesh": "2", "nal": "3", "nalnaf": "3", "cash": "5", "rvm": "6",
}  # fmt: skip
# id.loc.gov vocabulary scheme -> MARC source code for $2.
_VOCABULARY_SOURCE = {"graphicMaterials": "lctgm", "marcgt": "marcgt", "genreFormSchemes": ""}


def subjects(ctx: MappingContext) -> None:
    for n in nodes(ctx.work, "subject"):
        if n.element is None:
            raise BibframeMappingError("subject_without_label", n.uri or "")
        if "Uncontrolled" in classes(n.element) and label(n.element):
            # LoC's converter carries 653 index terms as bflc:Uncontrolled subjects: not 650.
            ctx.add("653", " ", " ", [Subfield("a", label(n.element) or "")])
            continue
        category = _subject_category(n.element)
        if category is not None:
            ctx.add("072", " ", category[0], category[1])
            continue
        tag, ind1, subs = _heading(n.element, "650")
        ind2, source = _subject_source(n.element, n.uri, tag)
        ctx.add(tag, ind1, ind2, [*subs, Subfield("2", source), *authority_links(n.uri)])


def genres(ctx: MappingContext) -> None:
    for owner in (ctx.work, ctx.inst):
        for n in nodes(owner, "genreForm"):
            if n.element is None:
                raise BibframeMappingError("genre_without_label", n.uri or "")
            _, _, subs = _heading(n.element, "655")
            ind2, source = _subject_source(n.element, n.uri, "655")
            ctx.add("655", " ", ind2, [*subs, Subfield("2", source), *authority_links(n.uri)])


def _subject_category(el: Element) -> tuple[str, list[Subfield]] | None:
    """072 (second indicator, subfields) for a subject given only as a category code.

    LoC's converter writes a 072 subject category as a Topic with a bf:code, no label, and a
    source from the classification schemes (NAL's is `agricola`, 072 second indicator 0).
    """
    names = [literal(el, name, ns) for name, ns in (("label", RDFS), ("authoritativeLabel", MADS))]
    value = literal(el, "code")
    sources = [n for n in nodes(el, "source") if "/classSchemes/" in (n.uri or "")]
    if any(names) or not value or not sources:
        return None
    scheme = code(sources[0]) or uri_tail(sources[0].uri)
    if scheme == "agricola":
        return "0", [Subfield("a", value)]
    return "7", [Subfield("a", value), Subfield("2", scheme)]


def _subject_source(el: Element, uri: str | None, tag: str) -> tuple[str, str]:
    """Second indicator of a 6XX and, for indicator 7, the $2 source code."""
    candidates = []
    for n in nodes(el, "source") + nodes(el, "isMemberOfMADSScheme", MADS):
        candidates += [code(n) or "", uri_tail(n.uri)]
    if uri and "id.loc.gov/authorities/" in uri:
        scheme = uri.split("id.loc.gov/authorities/", 1)[1].split("/", 1)[0]
        candidates.insert(0, "lcgft" if scheme == "genreForms" else scheme)
    elif uri and "id.loc.gov/rwo/agents/" in uri:
        candidates.insert(0, "names")  # LC's real-world-object URIs mirror the LC/NAF
    elif uri and "id.worldcat.org/fast/" in uri:
        candidates.insert(0, "fast")
    elif uri and "id.nlm.nih.gov/mesh/" in uri:
        candidates.insert(0, "mesh")
    elif uri and "id.loc.gov/vocabulary/" in uri:
        scheme = uri.split("id.loc.gov/vocabulary/", 1)[1].split("/", 1)[0]
        candidates.insert(0, _VOCABULARY_SOURCE.get(scheme, scheme))
    for value in candidates:
        if value in _SUBJECT_SOURCE_IND2 and not (tag == "655" and value == "names"):
            return _SUBJECT_SOURCE_IND2[value], ""
    for value in candidates:
        if value and value not in ("subjectSchemes", "genreFormSchemes"):
            return "7", value
    return "4", ""


def _heading(el: Element, default_tag: str) -> tuple[str, str, list[Subfield]]:
    """Tag, first indicator and subfields of a subject or genre heading."""
    cls = classes(el)
    components = [
        c for lst in el.findall(f"{{{MADS}}}componentList") for c in lst if isinstance(c.tag, str)
    ]
    if components and "ComplexSubject" in cls:
        tag, ind1, subs = _heading(components[0], default_tag)
        for comp in components[1:]:
            key = marc_key(comp)
            if key is not None and key.tag[:2] == "18":
                subs += list(key.subfields)
                continue
            text = label(comp)
            if not text:
                raise BibframeMappingError("subject_without_label", "component")
            sub_code = next((v for k, v in _SUBDIVISION.items() if k in classes(comp)), "x")
            subs.append(Subfield(sub_code, text))
        return tag, ind1, subs
    key = marc_key(el)
    tag = default_tag
    if default_tag != "655":
        tag = next((t for names, t in _SUBJECT_TAG if names & cls), default_tag)
    if key is not None:
        family = key.tag[1:]
        if key.tag[0] in "167" and family in ("00", "10", "11", "30", "48", "50", "51", "55"):
            tag = tag if default_tag == "655" else "6" + family
        ind1 = key.indicators[0] if tag in ("600", "610", "611") else " "
        subs = [s for s in key.subfields if s.code not in ("0", "1", "2")]
        return tag, ind1, subs
    text = label(el)
    if not text:
        raise BibframeMappingError("subject_without_label", "unlabelled heading")
    ind1 = {"600": "1", "610": "2", "611": "2"}.get(tag, " ")
    return tag, ind1, [Subfield("a", text)]
