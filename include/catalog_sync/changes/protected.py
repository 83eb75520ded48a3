"""Protected fields: the library's local fields that a vendor record never overwrites."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pymarc import Record

from catalog_sync.paths import CONFIG_DIR

DEFAULT_PATH = CONFIG_DIR / "protected_fields.yaml"


def _matches(pattern: str, tag: str) -> bool:
    return len(tag) == 3 and all(p == "X" or p == t for p, t in zip(pattern, tag, strict=True))


@lru_cache(maxsize=64)
def numeric_tags(patterns: tuple[str, ...]) -> frozenset[str]:
    """Every numeric tag the patterns match.

    Cached per pattern tuple: commit builds a TagSet for every record it fingerprints (2-3 per
    update), and expanding the 1,000 tags each time took a fifth of a commit task's CPU
    (bench/results/2026-12-01-throughput), which on a shared 2-core machine capped the
    requests a task could keep in flight.
    """
    tags = (f"{n:03d}" for n in range(1000))
    return frozenset(t for t in tags if any(_matches(p, t) for p in patterns))


@dataclass(frozen=True)
class TagSet:
    """Tag patterns: exact tags, or with X for any digit ("9XX")."""

    patterns: tuple[str, ...]
    # Every numeric tag the patterns match, worked out once: lookups run per field.
    _numeric: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_numeric", numeric_tags(tuple(self.patterns)))

    def __contains__(self, tag: object) -> bool:
        if not isinstance(tag, str):
            return False
        if tag.isdigit():
            return tag in self._numeric
        return any(_matches(p, tag) for p in self.patterns)


@dataclass(frozen=True)
class FieldRules:
    protected: TagSet
    volatile: TagSet


def load_field_rules(
    path: Path | None = None, protected: Iterable[str] | None = None
) -> FieldRules:
    """protected_fields.yaml, with a vendor's own protected list in place of the default one."""
    raw = yaml.safe_load((path or DEFAULT_PATH).read_text(encoding="utf-8")) or {}
    chosen = list(protected) if protected is not None else list(raw.get("protected") or [])
    for pattern in chosen:
        if len(pattern) != 3 or not all(c.isdigit() or c == "X" for c in pattern):
            raise ValueError(f"protected field {pattern!r}: expected a tag like 590 or 9XX")
    return FieldRules(TagSet(tuple(chosen)), TagSet(tuple(raw.get("volatile") or [])))


def merge_protected(incoming: Record, ils_copy: Record | None, protected: TagSet) -> Record:
    """The record to write: the vendor's fields, with protected ones taken from the ILS copy.

    Each kept field goes after the incoming fields of lower or equal tag, so tag order holds.
    """
    merged = Record(leader=str(incoming.leader), force_utf8=True)
    kept = [f for f in ils_copy.fields if f.tag in protected] if ils_copy is not None else []
    fields = [f for f in incoming.fields if f.tag not in protected]
    for local in kept:
        at = len(fields)
        while at > 0 and fields[at - 1].tag > local.tag:
            at -= 1
        fields.insert(at, local)
    merged.fields = fields
    return merged
