"""Assemble one MARC record from the mapping areas, in the order the fields depend on."""

from __future__ import annotations

from collections import Counter

from pymarc import Field, Leader, Record

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping import (
    agents,
    control,
    extent,
    identifiers,
    items,
    provision,
    subjects,
    titles,
    types,
)
from catalog_sync.bibframe.mapping.context import MappingContext
from catalog_sync.bibframe.rdfxml import MADS, local_name, namespace, parallel_literals
from catalog_sync.bibframe.stream import InstanceDescription

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


def instance_to_marc(desc: InstanceDescription, unmapped: Counter[str] | None = None) -> Record:
    """The MARC record for one Instance; raises BibframeMappingError rather than half-map.

    `unmapped`, when given, receives a count per BIBFRAME property the mapping table does
    not carry (e.g. `work.musicMedium`), so a report shows what a conversion left out.
    """
    if desc.work is None:
        if desc.work_uri:
            raise BibframeMappingError("work_missing", desc.work_uri)
        raise BibframeMappingError("instance_without_work", desc.uri or "")
    ctx = MappingContext(
        desc, desc.instance, desc.work, unmapped if unmapped is not None else Counter()
    )
    record = Record(force_utf8=True)
    record.leader = Leader(types.leader(ctx))
    record_id, assigner = control.record_id(ctx)
    record.add_field(Field(tag="001", data=record_id))
    if assigner:
        record.add_field(Field(tag="003", data=assigner))
    stamp = control.latest_transaction(ctx)
    if stamp:
        record.add_field(Field(tag="005", data=stamp))
    languages = control.languages(ctx)
    record.add_field(Field(tag="008", data=control.fixed_data(ctx, languages)))
    identifiers.identifiers(ctx)
    identifiers.classifications(ctx)
    has_main_entry = agents.contributions(ctx)
    titles.title(ctx, has_main_entry)
    titles.variant_titles(ctx)
    provision.edition(ctx)
    provision.provision(ctx)
    extent.physical_description(ctx)
    types.rda_types(ctx)
    titles.series(ctx)
    agents.name_title_entries(ctx)
    extent.notes(ctx)
    subjects.subjects(ctx)
    subjects.genres(ctx)
    control.language_codes(ctx, languages)
    extent.electronic_locators(ctx)
    items.items(ctx)
    _count_unmapped(ctx)
    for field in ctx.fields:
        record.add_ordered_field(field)
    return record


def _count_unmapped(ctx: MappingContext) -> None:
    for prefix, owner, mapped in (
        ("instance", ctx.inst, _INSTANCE_MAPPED),
        ("work", ctx.work, _WORK_MAPPED),
        *(("item", item, _ITEM_MAPPED) for item in ctx.desc.items),
    ):
        for child in owner:
            name = local_name(child.tag)
            if name and name not in mapped and namespace(child.tag) != MADS:
                ctx.unmapped[f"{prefix}.{name}"] += 1
        # Non-Latin parallels of romanised values are left out, not merged (mapping doc).
        parallels = parallel_literals(owner)
        if parallels:
            ctx.unmapped[f"{prefix}.alternateScript"] += parallels
