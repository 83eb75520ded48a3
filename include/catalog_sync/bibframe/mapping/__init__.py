"""Map one BIBFRAME Instance (with its Work and Items) to a MARC 21 bibliographic record.

The mapping table, with its sources, is docs/bibframe-mapping.md; one module per BIBFRAME
area (types, control, identifiers, agents, titles, provision, extent, subjects, items) and
`record` assembling them. What the table does not carry is counted by property name (never
dropped silently); what it carries but cannot map faithfully rejects the Instance with a
BibframeMappingError reason code.
"""

from __future__ import annotations

from catalog_sync.bibframe.mapping.record import instance_to_marc

__all__ = ["instance_to_marc"]
