"""BIBFRAME errors with stable reason codes (an Instance is rejected, a file is refused)."""

from __future__ import annotations


class BibframeMappingError(Exception):
    """An Instance that cannot be mapped to MARC without losing what it says; it is rejected.

    `reason` is a stable code counted in reports (e.g. `no_title`, `work_missing`);
    `detail` names the offending node for the operator, never record content beyond a label.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BibframeFileError(Exception):
    """The file is not BIBFRAME RDF/XML at all (not XML, or its root is not rdf:RDF)."""

    reason = "not_bibframe_rdfxml"
