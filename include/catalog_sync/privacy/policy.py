"""The PII masking policy (include/config/pii_policy.yaml) as validated, typed models."""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from catalog_sync.paths import CONFIG_DIR
from catalog_sync.privacy.errors import PolicyInvalidError

DEFAULT_POLICY_PATH = CONFIG_DIR / "pii_policy.yaml"


class MaskAction(StrEnum):
    HASH = "hash"
    REDACT = "redact"
    DROP = "drop"


class FieldRule(BaseModel):
    """Which subfields of which tags are masked, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = Field(description="Stable id; the run manifest counts masked values per rule")
    tags: tuple[str, ...] = Field(alias="tag")
    subfields: frozenset[str]
    action: MaskAction
    keep_when_ind1: frozenset[str] = frozenset()
    why: str = ""

    @field_validator("rule")
    @classmethod
    def _rule_id(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", v):
            raise ValueError(f"rule id {v!r} must be lower-case letters, digits and hyphens")
        return v

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, v: object) -> object:
        return (v,) if isinstance(v, str) else v

    @field_validator("tags")
    @classmethod
    def _data_field_tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for tag in v:
            # Control fields (00X) have no subfields, and 880 is reached through its $6 link.
            if not re.fullmatch(r"[0-9A-Za-z]{3}", tag) or tag.startswith("00") or tag == "880":
                raise ValueError(f"tag {tag!r} is not a data field tag a rule can name")
        if not v:
            raise ValueError("a rule needs at least one tag")
        return v

    @field_validator("subfields")
    @classmethod
    def _subfield_codes(cls, v: frozenset[str]) -> frozenset[str]:
        if not v or any(len(code) != 1 for code in v):
            raise ValueError("subfields must be a non-empty list of single-character codes")
        return v

    @field_validator("keep_when_ind1")
    @classmethod
    def _indicator_values(cls, v: frozenset[str]) -> frozenset[str]:
        if any(len(ind) != 1 for ind in v):
            raise ValueError("keep_when_ind1 values are single indicator characters")
        return v


class ScrubberRule(BaseModel):
    """A pattern for PII that can turn up anywhere in text (barcodes, e-mail, phone numbers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    pattern: str
    replacement: str
    prefilter: str | None = Field(
        default=None,
        description="Cheap regex matching wherever `pattern` can; the pattern runs only after it",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", v):
            raise ValueError(f"scrubber name {v!r} must be lower-case letters, digits, hyphens")
        return v

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            compiled = re.compile(v)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from exc
        if compiled.groups:
            # Scrubbers are joined into one alternation with named groups; inner capturing
            # groups would shift them.
            raise ValueError("use (?:...) instead of capturing groups in scrubber patterns")
        if compiled.match(""):
            raise ValueError("a scrubber pattern must not match the empty string")
        return v

    @field_validator("prefilter")
    @classmethod
    def _prefilter_compiles(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            compiled = re.compile(v)
        except re.error as exc:
            raise ValueError(f"prefilter does not compile: {exc}") from exc
        if compiled.groups or compiled.match(""):
            raise ValueError("a prefilter has no capturing groups and never matches ''")
        return v


class PiiPolicy(BaseModel):
    """The whole policy: field rules for records, scrubbers for any text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    redaction_marker: str = Field(default="[redacted]", min_length=1)
    hash_prefix: str = "hmac:"
    hash_hex_chars: int = Field(default=16, ge=8, le=64)
    fields: tuple[FieldRule, ...] = ()
    scrub_record_tags: tuple[str, ...] = Field(
        default=("XXX",),
        description="Tags whose values the scrubbers scan in masked records; X = any character",
    )
    scrubbers: tuple[ScrubberRule, ...] = ()

    @field_validator("scrub_record_tags")
    @classmethod
    def _tag_patterns(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            if not re.fullmatch(r"[0-9X]{3}", pattern):
                raise ValueError(f"scrub_record_tags entry {pattern!r} is not like 5XX or 852")
        return v

    def scrubbed_tag(self, tag: str) -> bool:
        """Whether the scrubbers scan values of `tag` in masked records."""
        return len(tag) == 3 and any(
            all(p in ("X", t) for p, t in zip(pattern, tag, strict=True))
            for pattern in self.scrub_record_tags
        )

    @model_validator(mode="after")
    def _unambiguous(self) -> PiiPolicy:
        ids = [r.rule for r in self.fields] + [f"scrub:{s.name}" for s in self.scrubbers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule ids: {', '.join(dupes)}")
        seen: dict[tuple[str, str], str] = {}
        for r in self.fields:
            for tag in r.tags:
                for code in r.subfields:
                    other = seen.setdefault((tag, code), r.rule)
                    if other != r.rule:
                        raise ValueError(f"{tag} ${code} is named by both {other} and {r.rule}")
        return self

    def rule_for(self, tag: str, code: str) -> FieldRule | None:
        """The rule that masks `tag $code`, if any (880 callers pass the linked tag)."""
        for r in self.fields:
            if tag in r.tags and code in r.subfields:
                return r
        return None


def load_policy(path: Path | None = None) -> PiiPolicy:
    """Read and validate a policy file (default include/config/pii_policy.yaml).

    Parsed once per version of the file (its size and modification time): YAML and pydantic
    took ~25 ms a call, paid by every chunk process_chunk handled without a masker. The policy
    is frozen, so the callers share one.
    """
    path = path or DEFAULT_POLICY_PATH
    try:
        st = path.stat()
    except OSError as exc:
        raise PolicyInvalidError(f"cannot read PII policy {path}: {exc}") from exc
    return _parsed_policy(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _parsed_policy(path: Path, mtime_ns: int, size: int) -> PiiPolicy:
    # A failure raises and is not cached: the next call reads the file again.
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyInvalidError(f"cannot read PII policy {path}: {exc}") from exc
    try:
        return PiiPolicy.model_validate(raw)
    except ValidationError as exc:
        raise PolicyInvalidError(f"PII policy {path} is invalid: {exc}") from exc
