"""BIBFRAME errors with stable reason codes (an Instance is rejected, a file is refused)."""

from __future__ import annotations

from catalog_sync.marc.errors import CatalogSyncInputError


class BibframeMappingError(Exception):
    """An Instance that cannot be mapped to MARC without losing what it says; it is rejected.

    `reason` is a stable code counted in reports (e.g. `no_title`, `work_missing`);
    `detail` names the offending node for the operator, never record content beyond a label.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BibframeFileError(CatalogSyncInputError):
    """The file is not BIBFRAME RDF/XML at all (not well-formed XML, or its root is not rdf:RDF).

    An input error like an unreadable MARC file: the fetch task fails at once with this
    message (file name, and line and column of the parse error), and is not retried.
    """

    reason = "not_bibframe_rdfxml"
