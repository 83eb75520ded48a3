"""Map one BIBFRAME Instance (with its Work and Items) to a MARC 21 bibliographic record.

The mapping table, with its sources, is docs/bibframe-mapping.md. What the table does not
carry is counted by property name (never dropped silently); what it carries but cannot
map faithfully rejects the Instance with a BibframeMappingError reason code.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from pymarc import Field, Indicators, Leader, Record, Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.marckey import MarcKey, parse_marc_key
from catalog_sync.bibframe.rdfxml import (
    BFLC,
    MADS,
    RDF,
    Element,
    Node,
    classes,
    code,
    label,
    literal,
    local_name,
    namespace,
    nodes,
    preferred_literals,
    props,
    uri_tail,
)
from catalog_sync.bibframe.stream import InstanceDescription

# Leader/06 from the Work's class (manuscript variant second), LoC bibframe2marc spec.
_RECORD_TYPE: list[tuple[str, str, str]] = [
    ("NotatedMusic", "c", "d"),
    ("Cartography", "e", "f"),
    ("MovingImage", "g", "g"),
    ("MusicAudio", "j", "j"),
    ("NonMusicAudio", "i", "i"),
    ("Audio", "i", "i"),
    ("StillImage", "k", "k"),
    ("Multimedia", "m", "m"),
    ("Dataset", "m", "m"),
    ("Object", "r", "r"),
    ("MixedMaterial", "p", "p"),
    ("Text", "a", "t"),
]
# When a Work has no typed class, its RDA content type (bf:content) decides.
_CONTENT_TYPE = {
    "txt": "a", "tct": "a", "ntm": "c", "cri": "e", "crm": "e", "tdi": "g", "tdm": "g",
    "prm": "j", "spw": "i", "snd": "i", "sti": "k", "tdf": "r", "cod": "m", "cop": "m",
}  # fmt: skip
_ISSUANCE = {"mono": "m", "serl": "s", "intg": "i", "mulm": "m", "coll": "c", "integrating": "i"}
_PROVISION_IND2 = {"Production": "0", "Publication": "1", "Distribution": "2", "Manufacture": "3"}
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
_CLASSIFICATION_TAG = {
    "ClassificationLcc": "050",
    "ClassificationNlm": "060",
    "ClassificationNal": "070",
    "ClassificationUdc": "080",
    "ClassificationDdc": "082",
}
_SHELFMARK_IND1 = {
    "ShelfMarkLcc": "0", "ShelfMarkDdc": "1", "ShelfMarkNlm": "2", "ShelfMarkUdc": "8",
}  # fmt: skip

# Properties the table carries; any other property is counted in `unmapped`.
_INSTANCE_MAPPED = {
    "type", "adminMetadata", "identifiedBy", "title", "responsibilityStatement",
    "editionStatement", "provisionActivity", "copyrightDate", "extent", "dimensions",
    "note", "media", "carrier", "seriesStatement", "seriesEnumeration", "instanceOf",
    "hasItem", "issuance", "contribution", "genreForm", "supplementaryContent", "credits",
    "electronicLocator", "summary", "tableOfContents", "hasSeries", "isPartOf",
    "publicationStatement", "provisionActivityStatement", "manufactureStatement",
    "projectedProvisionDate",
}  # fmt: skip
_WORK_MAPPED = {
    "type", "adminMetadata", "title", "contribution", "subject", "genreForm", "language",
    "classification", "content", "note", "summary", "tableOfContents", "relation",
    "hasSeries", "hasInstance", "isPartOf", "identifiedBy", "aap", "aap-normalized", "label",
}  # fmt: skip
_ITEM_MAPPED = {
    "type", "adminMetadata", "heldBy", "shelfMark", "sublocation", "note", "identifiedBy",
    "itemOf", "isPartOf", "enumerationAndChronology", "label",
}  # fmt: skip
_EDTF_YEAR = re.compile(r"(\d[\dXxu]{3})")


def instance_to_marc(desc: InstanceDescription, unmapped: Counter[str] | None = None) -> Record:
    """The MARC record for one Instance; raises BibframeMappingError rather than half-map.

    `unmapped`, when given, receives a count per BIBFRAME property the mapping table does
    not carry (e.g. `work.musicMedium`), so a report shows what a conversion left out.
    """
    if desc.work is None:
        if desc.work_uri:
            raise BibframeMappingError("work_missing", desc.work_uri)
        raise BibframeMappingError("instance_without_work", desc.uri or "")
    mapper = _Mapper(desc, unmapped if unmapped is not None else Counter())
    return mapper.record()


class _Mapper:
    """Builds one record; holds no state beyond the Instance being mapped."""

    def __init__(self, desc: InstanceDescription, unmapped: Counter[str]) -> None:
        assert desc.work is not None
        self.desc = desc
        self.inst = desc.instance
        self.work: Element = desc.work
        self.unmapped = unmapped
        self.fields: list[Field] = []

    # -- assembly ------------------------------------------------------------------------

    def record(self) -> Record:
        record = Record(force_utf8=True)
        record.leader = Leader(self._leader())
        record_id, assigner = self._record_id()
        record.add_field(Field(tag="001", data=record_id))
        if assigner:
            record.add_field(Field(tag="003", data=assigner))
        stamp = self._latest_transaction()
        if stamp:
            record.add_field(Field(tag="005", data=stamp))
        languages = self._languages()
        record.add_field(Field(tag="008", data=self._fixed_data(languages)))
        self._identifiers()
        self._classifications()
        has_main_entry = self._contributions()
        self._title(has_main_entry)
        self._variant_titles()
        self._edition()
        self._provision()
        self._physical_description()
        self._rda_types()
        self._series()
        self._notes()
        self._subjects()
        self._genres()
        self._language_codes(languages)
        self._electronic_locators()
        self._items()
        self._count_unmapped()
        for field in self.fields:
            record.add_ordered_field(field)
        return record

    def _add(self, tag: str, ind1: str, ind2: str, subfields: Iterable[Subfield]) -> None:
        subs = [s for s in subfields if s.value]
        if subs:
            self.fields.append(Field(tag=tag, indicators=Indicators(ind1, ind2), subfields=subs))

    # -- leader and control fields --------------------------------------------------------

    def _admin(self) -> list[Element]:
        """AdminMetadata of the Instance, else of the Work (BIBFRAME puts it on either)."""
        for owner in (self.inst, self.work):
            found = [n.element for n in nodes(owner, "adminMetadata") if n.element is not None]
            if found:
                return found
        return []

    def _statuses(self) -> list[tuple[str, Element]]:
        out = []
        for admin in self._admin():
            for n in nodes(admin, "status"):
                out.append((code(n) or "", admin))
        return out

    def _leader(self) -> str:
        codes = {c for c, _ in self._statuses()}
        status = "d" if "d" in codes else "c" if "c" in codes else "n"
        work_classes = classes(self.work)
        manuscript = "Manuscript" in classes(self.inst)
        record_type = ""
        for cls, plain, manu in _RECORD_TYPE:
            if cls in work_classes:
                record_type = manu if manuscript else plain
                break
        if not record_type:
            for n in nodes(self.work, "content"):
                record_type = _CONTENT_TYPE.get(code(n) or "", "")
                if record_type:
                    break
        if not record_type:
            raise BibframeMappingError("unknown_work_type", ",".join(sorted(work_classes)))
        level = "m"
        for n in nodes(self.inst, "issuance"):
            level = _ISSUANCE.get(code(n) or "", "m")
        encoding, conventions = "u", set()
        for admin in self._admin():
            for n in nodes(admin, "encodingLevel", BFLC):
                value = code(n) or ""
                encoding = " " if value == "f" else value if len(value) == 1 else encoding
            conventions |= {code(n) or "" for n in nodes(admin, "descriptionConventions")}
        form = "a" if "aacr" in conventions else "i" if conventions & {"isbd", "rda"} else "u"
        return f"     {status}{record_type}{level} a22     {encoding}{form} 4500"

    def _record_id(self) -> tuple[str, str | None]:
        """001/003: the Instance's local id, else its URI's last segment, else the Work's."""
        for admin in [
            n.element for n in nodes(self.inst, "adminMetadata") if n.element is not None
        ]:
            found = self._local_id(admin)
            if found:
                return found
        uri = self.desc.uri or ""
        if uri and not uri.startswith("_:"):
            tail = uri.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if tail:
                assigner = None
                for admin in self._admin():
                    local = self._local_id(admin)
                    assigner = local[1] if local else assigner
                return tail, assigner
        for admin in [
            n.element for n in nodes(self.work, "adminMetadata") if n.element is not None
        ]:
            found = self._local_id(admin)
            if found:
                return found
        raise BibframeMappingError("no_record_id", "blank-node Instance without a local id")

    @staticmethod
    def _local_id(admin: Element) -> tuple[str, str | None] | None:
        for n in nodes(admin, "identifiedBy"):
            if n.element is None or "Local" not in classes(n.element):
                continue
            value = literal(n.element, "value", RDF)
            if value:
                assigners = nodes(n.element, "assigner")
                assigner = _org_code(assigners[0]) if assigners else None
                return value, assigner
        return None

    def _latest_transaction(self) -> str | None:
        """005 from the latest change date (a converter's generation date is not one)."""
        dates: list[str] = []
        for admin in self._admin():
            dates += preferred_literals(admin, "changeDate")
            is_change = any(code(n) == "c" for n in nodes(admin, "status"))
            if is_change and not props(admin, "generationProcess"):
                dates += preferred_literals(admin, "date")
        stamps = [_stamp(d) for d in dates]
        valid = [s for s in stamps if s]
        return max(valid) if valid else None

    def _created(self) -> str:
        for admin in self._admin():
            for value in preferred_literals(admin, "creationDate"):
                if _stamp(value):
                    return _stamp(value)[2:8]
        for status, admin in self._statuses():
            if status == "n":
                for value in preferred_literals(admin, "date"):
                    if _stamp(value):
                        return _stamp(value)[2:8]
        return "||||||"

    def _fixed_data(self, languages: list[str]) -> str:
        """008 positions common to all material: entered, dates, place, language."""
        date_type, date1, date2 = "n", "uuuu", "    "
        place = "xx "
        for pa in self._provision_activities():
            dates = preferred_literals(pa, "date")
            if dates and date_type == "n":
                date_type, date1, date2 = _dates_008(dates[0])
            for n in nodes(pa, "place"):
                if n.uri and "/countries/" in n.uri and place == "xx ":
                    place = f"{uri_tail(n.uri):<3}"[:3]
        language = languages[0] if languages else "|||"
        return f"{self._created()}{date_type}{date1}{date2}{place}{'|' * 17}{language}||"

    # -- identifiers, classification -------------------------------------------------------

    def _identifiers(self) -> None:
        for owner, prefix in ((self.inst, "instance"), (self.work, "work")):
            for n in nodes(owner, "identifiedBy"):
                if n.element is None:
                    self.unmapped[f"{prefix}.identifiedBy"] += 1
                    continue
                cls = classes(n.element) & (set(_IDENTIFIERS) | {"IssnL"})
                if not cls:
                    names = "/".join(sorted(classes(n.element)))
                    self.unmapped[f"{prefix}.identifiedBy.{names}"] += 1
                    continue
                self._identifier(sorted(cls)[0], n.element)

    def _identifier(self, cls: str, el: Element) -> None:
        value = literal(el, "value", RDF)
        if cls == "Lccn" and value:
            # An LCCN's leading blanks are part of its structure (prefix positions).
            value = next((p.text.rstrip() for p in props(el, "value", RDF) if p.text), value)
        if not value:
            return
        if cls == "IssnL":
            self._add("022", " ", " ", [Subfield("l", value)])
            return
        tag, ind1, ind2, source = _IDENTIFIERS[cls]
        invalid = any(code(n) in ("cancinv", "invalid") for n in nodes(el, "status"))
        qualifiers = preferred_literals(el, "qualifier")
        assigners = nodes(el, "assigner")
        assigner = _org_code(assigners[0]) if assigners else None
        if tag == "035":
            prefix = "OCoLC" if cls == "OclcNumber" else assigner
            self._add(tag, ind1, ind2, [Subfield("a", f"({prefix}){value}" if prefix else value)])
            return
        subs = [Subfield("z" if invalid else "a", value)]
        if tag == "028" and assigner:
            subs.append(Subfield("b", assigner))
        if tag in ("020", "024", "028"):
            subs += [Subfield("q", q) for q in qualifiers]
        if source:
            subs.append(Subfield("2", source))
        self._add(tag, ind1, ind2, subs)

    def _classifications(self) -> None:
        for n in nodes(self.work, "classification"):
            el = n.element
            if el is None:
                self.unmapped["work.classification"] += 1
                continue
            cls = classes(el)
            portion = literal(el, "classificationPortion")
            item = literal(el, "itemPortion")
            source = _source_code(el)
            tag = next((t for c, t in _CLASSIFICATION_TAG.items() if c in cls), "084")
            if not portion or (tag == "084" and not source):
                self.unmapped["work.classification.incomplete"] += 1
                continue
            by_lc = any((_org_code(a) or "").lower() == "dlc" for a in nodes(el, "assigner"))
            subs = [Subfield("a", portion), Subfield("b", item or "")]
            if tag == "082":
                abridged = (literal(el, "edition") or "").lower().startswith("abridged")
                subs.append(Subfield("2", source or ""))
                self._add(tag, "1" if abridged else "0", "0" if by_lc else "4", subs)
            elif tag == "084":
                self._add(tag, " ", " ", [*subs, Subfield("2", source or "")])
            elif tag in ("050", "060", "070"):
                ind2 = "0" if by_lc else "4"
                self._add(tag, " " if tag != "070" else "0", ind2 if tag != "070" else " ", subs)
            else:
                self._add(tag, " ", " ", subs)

    # -- names and titles -----------------------------------------------------------------

    def _contributions(self) -> bool:
        has_main = False
        for owner, prefix in ((self.work, "work"), (self.inst, "instance")):
            for n in nodes(owner, "contribution"):
                if n.element is None:
                    raise BibframeMappingError("contributor_without_name", n.uri or prefix)
                primary = bool({"PrimaryContribution"} & classes(n.element)) and prefix == "work"
                has_main |= self._contribution(n.element, primary and not has_main)
        return has_main

    def _contribution(self, contrib: Element, as_main: bool) -> bool:
        agents = nodes(contrib, "agent")
        if not agents or agents[0].element is None:
            detail = agents[0].uri if agents else "contribution without agent"
            raise BibframeMappingError("contributor_without_name", detail or "")
        agent = agents[0].element
        key = _marc_key(agent)
        agent_classes = classes(agent)
        if key is not None and key.tag[1:] in ("00", "10", "11", "30"):
            family, ind1, subs = key.tag[1:], key.indicators[0], list(key.subfields)
        else:
            name = label(agent)
            if not name:
                raise BibframeMappingError("contributor_without_name", agents[0].uri or "")
            family, ind1 = _name_family(agent_classes)
            subs = [Subfield("a", name)]
        term_code = "j" if family == "11" else "e"
        terms, relators = [], []
        for role in nodes(contrib, "role"):
            term = label(role.element)
            if term:
                terms.append(Subfield(term_code, term))
            relator = code(role)
            if relator and role.uri and "/relators/" in role.uri:
                relators.append(Subfield("4", relator))
        # The bf:role nodes are authoritative; a marcKey's own $e/$4 is kept only without them.
        dropped = {"0", "1"} | ({"e", "j"} if terms else set()) | ({"4"} if relators else set())
        subs = [s for s in subs if s.code not in dropped]
        subs += terms + relators + _authority_links(agents[0].uri)
        if family == "":
            self._add("720", " ", " ", subs)
            return False
        self._add(("1" if as_main else "7") + family, ind1, " ", subs)
        return as_main

    def _titles(self, owner: Element, wanted: str) -> list[Element]:
        out = []
        for n in nodes(owner, "title"):
            if n.element is None:
                continue
            cls = classes(n.element)
            if wanted in cls and (wanted != "Title" or len(cls - {"Title"}) == 0):
                out.append(n.element)
        return out

    def _title(self, has_main_entry: bool) -> None:
        titles = self._titles(self.inst, "Title") or self._titles(self.work, "Title")
        main = None
        for t in titles:
            main = t if preferred_literals(t, "mainTitle") or label(t) else None
            if main is not None:
                break
        if main is None:
            raise BibframeMappingError("no_title", self.desc.uri or "")
        nonsort = literal(main, "nonSortNum", BFLC) or "0"
        statement = " ; ".join(preferred_literals(self.inst, "responsibilityStatement"))
        subs = [*self._title_parts(main), Subfield("c", statement)]
        self._add(
            "245",
            "1" if has_main_entry else "0",
            nonsort[:1] if nonsort[:1].isdigit() else "0",
            subs,
        )
        for prefix, owner in (("work", self.work),):
            for n in nodes(owner, "title"):
                if n.element is not None and classes(n.element) != {"Title"}:
                    self.unmapped[f"{prefix}.title.{'/'.join(sorted(classes(n.element)))}"] += 1

    @staticmethod
    def _title_parts(title: Element) -> list[Subfield]:
        main = preferred_literals(title, "mainTitle") or [label(title) or ""]
        subs = [Subfield("a", main[0])]
        subs += [Subfield("b", v) for v in preferred_literals(title, "subtitle")[:1]]
        subs += [Subfield("n", v) for v in preferred_literals(title, "partNumber")]
        subs += [Subfield("p", v) for v in preferred_literals(title, "partName")]
        return subs

    def _variant_titles(self) -> None:
        for cls, tag, ind1, ind2 in (
            ("VariantTitle", "246", "3", " "),
            ("ParallelTitle", "246", "3", "1"),
            ("KeyTitle", "222", " ", "0"),
            ("AbbreviatedTitle", "210", "0", " "),
        ):
            for t in self._titles(self.inst, cls):
                self._add(tag, ind1, ind2, self._title_parts(t))

    def _edition(self) -> None:
        for value in preferred_literals(self.inst, "editionStatement"):
            self._add("250", " ", " ", [Subfield("a", value)])

    # -- publication, description -----------------------------------------------------------

    def _provision_activities(self) -> list[Element]:
        found = [n.element for n in nodes(self.inst, "provisionActivity") if n.element is not None]
        # 008 dates come from the publication first, as in the MARC 21 definition of 008/07.
        return sorted(found, key=lambda e: 0 if "Publication" in classes(e) else 1)

    def _provision(self) -> None:
        produced = False
        for n in nodes(self.inst, "provisionActivity"):
            pa = n.element
            if pa is None:
                continue
            ind2 = next((v for k, v in _PROVISION_IND2.items() if k in classes(pa)), "1")
            places = preferred_literals(pa, "simplePlace", BFLC) or [
                label(p.element) or ""
                for p in nodes(pa, "place")
                if p.element is not None and "/countries/" not in (p.uri or "")
            ]
            agents = preferred_literals(pa, "simpleAgent", BFLC) or [
                label(a.element) or "" for a in nodes(pa, "agent") if a.element is not None
            ]
            dates = preferred_literals(pa, "simpleDate", BFLC) or [
                _edtf_display(d) for d in preferred_literals(pa, "date")
            ]
            subs = [Subfield("a", p) for p in places] + [Subfield("b", a) for a in agents]
            subs += [Subfield("c", d) for d in dates[:1]]
            before = len(self.fields)
            self._add("264", " ", ind2, subs)
            produced |= len(self.fields) > before
        for value in preferred_literals(self.inst, "copyrightDate"):
            self._add("264", " ", "4", [Subfield("c", value)])
        if not produced:
            for name in ("publicationStatement", "provisionActivityStatement"):
                if props(self.inst, name):
                    self.unmapped[f"instance.{name}"] += 1

    def _physical_description(self) -> None:
        extents = [
            label(n.element) or "" for n in nodes(self.inst, "extent") if n.element is not None
        ]
        details = [label(el) or "" for el in self._notes_of(self.inst) if _is_physical(el)]
        dimensions = preferred_literals(self.inst, "dimensions")
        if extents or dimensions:
            subs = [Subfield("a", e) for e in extents] + [Subfield("b", d) for d in details]
            self._add("300", " ", " ", subs + [Subfield("c", d) for d in dimensions])

    def _rda_types(self) -> None:
        for owner, name, tag, source in (
            (self.work, "content", "336", "rdacontent"),
            (self.inst, "media", "337", "rdamedia"),
            (self.inst, "carrier", "338", "rdacarrier"),
        ):
            for n in nodes(owner, name):
                term = label(n.element) if n.element is not None else None
                self._add(
                    tag,
                    " ",
                    " ",
                    [
                        Subfield("a", term or ""),
                        Subfield("b", code(n) or ""),
                        Subfield("2", source),
                    ],
                )

    def _series(self) -> None:
        statements = preferred_literals(self.inst, "seriesStatement")
        numbering = preferred_literals(self.inst, "seriesEnumeration")
        transcribed: list[list[Subfield]] = [
            [Subfield("a", s), *[Subfield("v", v) for v in numbering[:1]]] for s in statements
        ]
        traced: list[list[Subfield]] = []
        series_nodes: list[tuple[Node, str | None]] = []
        for owner in (self.work, self.inst):
            for n in nodes(owner, "hasSeries"):
                series_nodes.append((n, None))
            for rel in nodes(owner, "relation"):
                if rel.element is None:
                    continue
                kinds = [
                    uri_tail(r.uri) or label(r.element) for r in nodes(rel.element, "relationship")
                ]
                if not any(k and "eries" in k for k in kinds):
                    self.unmapped["work.relation"] += 1
                    continue
                number = literal(rel.element, "seriesEnumeration")
                for res in nodes(rel.element, "associatedResource"):
                    series_nodes.append((res, number))
        for n, number in series_nodes:
            el = n.element
            if el is None:
                raise BibframeMappingError("series_without_title", n.uri or "")
            key = _marc_key(el)
            titles = [t for t in (nodes(el, "title")) if t.element is not None]
            name = (
                preferred_literals(titles[0].element, "mainTitle")
                if titles and titles[0].element is not None
                else []
            ) or [label(el) or ""]
            uncontrolled = "Uncontrolled" in classes(el) or any(
                code(s) == "t" for s in nodes(el, "status")
            )
            if uncontrolled or key is None:
                if not name[0]:
                    raise BibframeMappingError("series_without_title", n.uri or "")
                issn = [
                    literal(i.element, "value", RDF) or ""
                    for i in nodes(el, "identifiedBy")
                    if i.element is not None and "Issn" in classes(i.element)
                ]
                transcribed.append(
                    [
                        Subfield("a", name[0]),
                        *[Subfield("x", i) for i in issn],
                        Subfield("v", number or ""),
                    ]
                )
            else:
                subs = [s for s in key.subfields if s.code not in ("v", "0", "1")]
                traced.append([*subs, Subfield("v", number or ""), *_authority_links(n.uri)])
                tag = "8" + key.tag[1:] if key.tag[1:] in ("00", "10", "11", "30") else "830"
                ind = (
                    key.indicators
                    if tag != "830"
                    else (" ", key.indicators[0] if key.tag == "130" else key.indicators[1])
                )
                self._add(tag, ind[0], ind[1], traced[-1])
        for subs in transcribed:
            self._add("490", "1" if traced else "0", " ", subs)

    @staticmethod
    def _notes_of(owner: Element) -> list[Element]:
        return [n.element for n in nodes(owner, "note") if n.element is not None]

    def _notes(self) -> None:
        for owner in (self.inst, self.work):
            for el in self._notes_of(owner):
                if not _is_physical(el):
                    self._add("500", " ", " ", [Subfield("a", label(el) or "")])
        for owner, name, tag, ind1 in (
            (self.inst, "supplementaryContent", "504", " "),
            (self.work, "tableOfContents", "505", "0"),
            (self.inst, "tableOfContents", "505", "0"),
            (self.inst, "credits", "508", " "),
            (self.work, "summary", "520", " "),
            (self.inst, "summary", "520", " "),
        ):
            for n in nodes(owner, name):
                text = label(n.element) if n.element is not None else None
                self._add(tag, ind1, " ", [Subfield("a", text or "")])
            for value in preferred_literals(owner, name):
                self._add(tag, ind1, " ", [Subfield("a", value)])

    # -- subjects and genres ----------------------------------------------------------------

    def _subjects(self) -> None:
        for n in nodes(self.work, "subject"):
            if n.element is None:
                raise BibframeMappingError("subject_without_label", n.uri or "")
            tag, ind1, subs = _heading(n.element, "650")
            ind2, source = _subject_source(n.element, n.uri, tag)
            self._add(tag, ind1, ind2, [*subs, Subfield("2", source), *_authority_links(n.uri)])

    def _genres(self) -> None:
        for owner in (self.work, self.inst):
            for n in nodes(owner, "genreForm"):
                if n.element is None:
                    raise BibframeMappingError("genre_without_label", n.uri or "")
                _, _, subs = _heading(n.element, "655")
                ind2, source = _subject_source(n.element, n.uri, "655")
                self._add(
                    "655", " ", ind2, [*subs, Subfield("2", source), *_authority_links(n.uri)]
                )

    # -- language, links, items -------------------------------------------------------------

    def _languages(self) -> list[str]:
        out: list[str] = []
        for n in nodes(self.work, "language"):
            value = code(n) or uri_tail(n.uri)
            if len(value) == 3 and value.isalpha() and value not in out:
                out.append(value.lower())
        return out

    def _language_codes(self, languages: list[str]) -> None:
        if len(languages) > 1:
            self._add("041", "0", " ", [Subfield("a", v) for v in languages])

    def _electronic_locators(self) -> None:
        for n in nodes(self.inst, "electronicLocator"):
            self._add("856", "4", "0", [Subfield("u", n.uri or label(n.element) or "")])

    def _items(self) -> None:
        for seq, item in enumerate(self.desc.items, start=1):
            link = Subfield("8", str(seq))
            shelf = [m.element for m in nodes(item, "shelfMark") if m.element is not None]
            ind1 = next(
                (v for k, v in _SHELFMARK_IND1.items() for s in shelf if k in classes(s)),
                "8" if shelf else " ",
            )
            held = [_org_code(h) or "" for h in nodes(item, "heldBy")]
            subs = [link, *[Subfield("a", h) for h in held[:1]]]
            subs += [
                Subfield("b", label(s.element) or "")
                for s in nodes(item, "sublocation")
                if s.element is not None
            ]
            subs += [Subfield("h", label(s) or "") for s in shelf[:1]]
            subs += [Subfield("z", label(n) or "") for n in self._notes_of(item)]
            self._add("852", ind1, " ", subs)
            item_id = self._item_id(item)
            barcodes = [
                literal(i.element, "value", RDF) or ""
                for i in nodes(item, "identifiedBy")
                if i.element is not None and "Barcode" in classes(i.element)
            ]
            parts = [
                label(e.element) or ""
                for e in nodes(item, "enumerationAndChronology")
                if e.element is not None
            ]
            if item_id or barcodes:
                self._add(
                    "876",
                    " ",
                    " ",
                    [
                        link,
                        Subfield("a", item_id or ""),
                        *[Subfield("p", b) for b in barcodes],
                        *[Subfield("3", p) for p in parts],
                    ],
                )

    @staticmethod
    def _item_id(item: Element) -> str | None:
        for admin in [n.element for n in nodes(item, "adminMetadata") if n.element is not None]:
            local = _Mapper._local_id(admin)
            if local:
                return local[0]
        about = item.get(f"{{{RDF}}}about") or ""
        return about.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None

    def _count_unmapped(self) -> None:
        for prefix, owner, mapped in (
            ("instance", self.inst, _INSTANCE_MAPPED),
            ("work", self.work, _WORK_MAPPED),
            *(("item", item, _ITEM_MAPPED) for item in self.desc.items),
        ):
            for child in owner:
                name = local_name(child.tag)
                if name and name not in mapped and namespace(child.tag) != MADS:
                    self.unmapped[f"{prefix}.{name}"] += 1


# -- helpers shared by several fields ---------------------------------------------------------


def _stamp(value: str) -> str:
    """An xsd date/dateTime as MARC 005 `yyyymmddhhmmss.f`; empty when not a date."""
    digits = re.sub(r"\D", "", value)[:14]
    if len(digits) < 8:
        return ""
    return f"{digits:0<14}.0"


def _dates_008(edtf: str) -> tuple[str, str, str]:
    """008/06-14 from an EDTF date: one year `s`, a range `m` (or `c` when open-ended)."""
    years = [y.replace("X", "u").replace("x", "u") for y in _EDTF_YEAR.findall(edtf)]
    if not years:
        return "n", "uuuu", "    "
    if edtf.rstrip().endswith(("/..", "/")):
        return "c", years[0], "9999"
    if len(years) > 1:
        return "m", years[0], years[1]
    return "s", years[0], "    "


def _edtf_display(edtf: str) -> str:
    """An EDTF interval as a reader writes it: `2009/..` -> `2009-`, `1861/1863` -> `1861-1863`."""
    start, sep, end = edtf.partition("/")
    if not sep:
        return edtf
    return f"{start}-{'' if end in ('', '..') else end}"


def _org_code(node: Node) -> str | None:
    """An organisation's code (bf:code, else the organizations URI tail), else its name."""
    if node.element is not None:
        value = literal(node.element, "code")
        if value:
            return value
    if node.uri and "/organizations/" in node.uri:
        return uri_tail(node.uri)
    return label(node.element)


def _marc_key(el: Element) -> MarcKey | None:
    """The node's preferred-script bflc:marcKey (or a legacy bflc:name00MarcKey-style key)."""
    keys = [
        child
        for child in el
        if namespace(child.tag) == BFLC
        and local_name(child.tag).lower().endswith("marckey")
        and (child.text or "").strip()
    ]
    for child in sorted(
        keys, key=lambda c: 1 if c.get("{http://www.w3.org/XML/1998/namespace}lang") else 0
    ):
        parsed = parse_marc_key(child.text or "")
        if parsed is not None:
            return parsed
    return None


def _name_family(agent_classes: set[str]) -> tuple[str, str]:
    """(tag family, first indicator) for an agent known only by its class."""
    if agent_classes & {"Family"}:
        return "00", "3"
    if agent_classes & {"Person"}:
        return "00", "1"
    if agent_classes & {"Jurisdiction"}:
        return "10", "1"
    if agent_classes & {"Organization"}:
        return "10", "2"
    if agent_classes & {"Meeting"}:
        return "11", "2"
    return "", " "


def _authority_links(uri: str | None) -> list[Subfield]:
    """$0 for an authority/vocabulary URI, $1 for a real-world-object URI; none for local ones."""
    if not uri or uri.startswith("_:") or "#" in uri or "/resources/" in uri:
        return []
    if not uri.startswith(("http://", "https://")):
        return []
    return [Subfield("1" if "/rwo/" in uri else "0", uri)]


def _source_code(el: Element) -> str | None:
    for n in nodes(el, "source"):
        value = code(n) or (label(n.element) if n.element is not None else None)
        if value:
            return value
    return None


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
            key = _marc_key(comp)
            if key is not None and key.tag[:2] == "18":
                subs += list(key.subfields)
                continue
            text = label(comp)
            if not text:
                raise BibframeMappingError("subject_without_label", "component")
            sub_code = next((v for k, v in _SUBDIVISION.items() if k in classes(comp)), "x")
            subs.append(Subfield(sub_code, text))
        return tag, ind1, subs
    key = _marc_key(el)
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


def _is_physical(note: Element) -> bool:
    kinds = {c.lower() for c in classes(note)} | {
        v.lower() for v in preferred_literals(note, "noteType")
    }
    return "physical" in kinds or "physical details" in kinds
