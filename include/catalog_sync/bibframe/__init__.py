"""BIBFRAME 2.0 RDF/XML input: stream Instances and map them to MARC 21 records."""

from __future__ import annotations

from catalog_sync.bibframe.convert import (
    BibframeConversionReport,
    convert_bibframe,
    instance_to_marc,
    iter_instance_descriptions,
)
from catalog_sync.bibframe.errors import BibframeFileError, BibframeMappingError
from catalog_sync.bibframe.stream import InstanceDescription, check_rdfxml

__all__ = [
    "BibframeConversionReport",
    "BibframeFileError",
    "BibframeMappingError",
    "InstanceDescription",
    "check_rdfxml",
    "convert_bibframe",
    "instance_to_marc",
    "iter_instance_descriptions",
]
