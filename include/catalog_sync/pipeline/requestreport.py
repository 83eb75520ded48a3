"""Requests per written record, per kind of work: a run's commit reports summed (issue 17)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from catalog_sync.models import CommitReport, RequestKind


@dataclass(frozen=True)
class RequestFigure:
    """One kind of work: requests sent, records (or items) written, and their ratio."""

    kind: str
    requests: int
    written: int
    by_method: dict[str, int]

    @property
    def per_written(self) -> float | None:
        return round(self.requests / self.written, 2) if self.written else None

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "written": self.written,
            "per_written": self.per_written,
            "by_method": self.by_method,
        }


# What each kind's requests are divided by; shared requests are spread over every record
# written (the `all` line), so they have no denominator of their own.
_WRITTEN = {
    RequestKind.CREATE: ("created",),
    RequestKind.UPDATE: ("updated",),
    RequestKind.DELETE: ("deleted",),
    RequestKind.ITEM: ("items_created", "items_updated", "items_deleted"),
    RequestKind.SHARED: (),
}
ALL = "all"


def request_figures(commits: Sequence[CommitReport]) -> list[RequestFigure]:
    """Per kind, then `all` (every request over the records written, items not included)."""
    figures = []
    for kind, fields in _WRITTEN.items():
        methods: Counter[str] = Counter()
        for c in commits:
            methods.update(c.requests.get(kind, {}))
        written = sum(getattr(c, f) for c in commits for f in fields)
        figures.append(RequestFigure(kind.value, methods.total(), written, dict(methods)))
    every: Counter[str] = Counter()
    for figure in figures:
        every.update(figure.by_method)
    records = sum(c.created + c.updated + c.deleted for c in commits)
    figures.append(RequestFigure(ALL, every.total(), records, dict(every)))
    return figures


def render_request_lines(commits: Sequence[CommitReport]) -> list[str]:
    """The report.txt section; none when nothing was sent (no commit ran, or nothing changed)."""
    figures = request_figures(commits)
    if not figures[-1].requests:
        return []
    lines = [
        "",
        "ILS requests per written record (every attempt counted, retries included; reads of",
        "records left unchanged count against the records written):",
    ]
    for f in figures:
        if f.kind == RequestKind.SHARED:
            lines.append(f"  {f.kind}: {f.requests:,} (login tokens; counted in `all`)")
            continue
        ratio = f" = {f.per_written:.2f}" if f.per_written is not None else ""
        lines.append(f"  {f.kind}: {f.requests:,} / {f.written:,} {_NOUN[f.kind]}{ratio}")
    return lines


_NOUN = {"create": "created", "update": "updated", "delete": "deleted"}
_NOUN |= {"item": "items written", ALL: "records written"}
