"""Convert a BIBFRAME RDF/XML file to a MARCXML collection, one Instance at a time."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pymarc import record_to_xml

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping import instance_to_marc
from catalog_sync.bibframe.stream import InstanceDescription, iter_instance_descriptions

__all__ = [
    "BibframeConversionReport",
    "InstanceDescription",
    "convert_bibframe",
    "instance_to_marc",
    "iter_instance_descriptions",
]

_COLLECTION_OPEN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<collection xmlns="http://www.loc.gov/MARC21/slim">\n'
)
_COLLECTION_CLOSE = b"</collection>\n"


@dataclass(frozen=True)
class BibframeConversionReport:
    """Counts of one conversion: instances = converted + rejected, reasons per code.

    `unmapped` counts BIBFRAME properties outside the mapping table (docs/bibframe-mapping.md)
    on converted Instances, so what a conversion leaves out is visible, not silent.
    """

    instances: int
    converted: int
    rejected: int
    reasons: dict[str, int]
    unmapped: dict[str, int] = field(default_factory=dict)


def convert_bibframe(src: Path, dest_marcxml: Path) -> BibframeConversionReport:
    """Write every mappable Instance of `src` as a MARCXML record to `dest_marcxml`.

    The collection is written to a temporary sibling and renamed when complete, so a
    failed conversion never leaves a file that looks whole. Raises BibframeFileError when
    `src` is not RDF/XML at all; a single Instance that cannot be mapped is only counted.
    """
    reasons: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    instances = converted = 0
    partial = dest_marcxml.with_name(f".{dest_marcxml.name}.partial")
    try:
        with partial.open("wb") as out:
            out.write(_COLLECTION_OPEN)
            # Nodes waiting for their Work are held beside the output, inside the runtime folder.
            for desc in iter_instance_descriptions(src, spill_dir=dest_marcxml.parent):
                instances += 1
                seen: Counter[str] = Counter()
                try:
                    record = instance_to_marc(desc, seen)
                except BibframeMappingError as exc:
                    reasons[exc.reason] += 1
                    continue
                unmapped.update(seen)
                out.write(record_to_xml(record, namespace=False))
                out.write(b"\n")
                converted += 1
            out.write(_COLLECTION_CLOSE)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(dest_marcxml)
    finally:
        partial.unlink(missing_ok=True)
    return BibframeConversionReport(
        instances=instances,
        converted=converted,
        rejected=instances - converted,
        reasons=dict(sorted(reasons.items())),
        unmapped=dict(sorted(unmapped.items())),
    )
