"""Masking of MARC records for everything that is not the ILS payload.

`Masker(policy, key)` masks pymarc Records (a copy; the original keeps the real values for the
ILS), raw ISO 2709 bytes (reject files, including records pymarc cannot parse) and telemetry
strings, and counts what it masked per rule for the run manifest.

    masker = Masker(load_policy(), key=conn.password)  # Airflow Connection catalog_sync_pii
    safe = masker.mask_record(record)                   # staging, dry-run diffs, reports
    RejectWriter(path, chunk_id, mask=lambda raw: masker.mask_raw(raw, ref.format))
    log.info(masker.scrub(message))                     # any telemetry string
    manifest.add_masking_counts(masker.counts)          # per rule id, for the run manifest
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter

from pymarc import Field, Record
from pymarc.field import Subfield

from catalog_sync.models import RecordFormat
from catalog_sync.privacy.errors import MaskingKeyError
from catalog_sync.privacy.marcxml import mask_marcxml
from catalog_sync.privacy.policy import MaskAction, PiiPolicy
from catalog_sync.privacy.rawmarc import (
    FIELD_TERMINATOR,
    build_record,
    directory_entries,
    fields_by_offset,
    plausible_leader,
)
from catalog_sync.privacy.scrub import Scrubber

RECORD_TERMINATOR = b"\x1d"
SUBFIELD_DELIMITER = b"\x1f"
_CONTENT_RUN = re.compile(rb"[^\x1d\x1e\x1f]+")


@dataclass(frozen=True, slots=True)
class _Rule:
    rule: str
    action: MaskAction
    keep_when_ind1: frozenset[str]


# Per tag: subfield code -> rule. Built once so masking a field is a dict lookup.
_TagRules = dict[str, _Rule]
_value = itemgetter(1)  # Subfield.value, at C speed inside map()


# Marks 880 in the rule table: its rules are those of the tag its $6 links to.
_LINKED: _TagRules = {}


def _compile(policy: PiiPolicy) -> dict[str, _TagRules]:
    by_tag: dict[str, _TagRules] = {"880": _LINKED}
    for r in policy.fields:
        compiled = _Rule(r.rule, r.action, r.keep_when_ind1)
        for tag in r.tags:
            for code in r.subfields:
                by_tag.setdefault(tag, {})[code] = compiled
    return by_tag


# What mask_record does with a field, by tag: one dict lookup per field decides.
_CONTROL: _TagRules = {}  # 00X: coded data, copied as is
_COPY: _TagRules = {}  # no rule, not scanned: copied as is
_SCAN: _TagRules = {}  # no rule, values scanned by the scrubbers


class _FieldPlan(dict[str, _TagRules]):
    """Tag -> _CONTROL, _COPY, _SCAN, _LINKED (880) or the tag's rules; filled on first sight."""

    def __init__(self, policy: PiiPolicy, by_tag: dict[str, _TagRules]) -> None:
        super().__init__()
        self._policy = policy
        self._by_tag = by_tag

    def __missing__(self, tag: str) -> _TagRules:
        if tag < "010" and tag.isdigit():  # pymarc's own test for a control field
            plan = _CONTROL
        elif tag in self._by_tag:
            plan = self._by_tag[tag]
        elif self._policy.scrubbed_tag(tag):
            plan = _SCAN
        else:
            plan = _COPY
        self[tag] = plan
        return plan


class Masker:
    """Applies a PII policy with a secret key; one per task is enough (it keeps no record)."""

    def __init__(self, policy: PiiPolicy, key: str | bytes | None) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not key or not key.strip():
            raise MaskingKeyError(
                "the PII masking key is empty: set the password of the Airflow Connection "
                "catalog_sync_pii (or the secrets backend entry) before running"
            )
        self.policy = policy
        # Only the keyed HMAC state is kept, not the key, so no attribute holds the secret.
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)
        self._hex = policy.hash_hex_chars
        self._prefix = policy.hash_prefix
        self._marker = policy.redaction_marker
        self._by_tag = _compile(policy)
        self._scrubber = Scrubber.from_policy(policy)
        self._plan = _FieldPlan(policy, self._by_tag)
        self._rule_counts: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"Masker(rules={len(self.policy.fields)}, scrubbers={len(self.policy.scrubbers)})"

    @property
    def counts(self) -> dict[str, int]:
        """Masked values per rule id, and scrubber replacements as `scrub:<name>`."""
        merged = Counter(self._rule_counts)
        merged.update(self._scrubber.counts)
        return dict(sorted(merged.items()))

    def reset_counts(self) -> None:
        self._rule_counts.clear()
        self._scrubber.counts.clear()

    def hash_value(self, value: str | bytes) -> str:
        """The keyed hash of one value, as it appears in masked output (`hmac:<hex>`)."""
        h = self._hmac.copy()
        h.update(value.encode("utf-8") if isinstance(value, str) else value)
        return self._prefix + h.hexdigest()[: self._hex]

    def scrub(self, text: str) -> str:
        """Replace patron barcodes, e-mail addresses and phone numbers in any telemetry string."""
        return self._scrubber.scrub(text)

    @property
    def scrubber(self) -> Scrubber:
        return self._scrubber

    # -- pymarc records --------------------------------------------------------------------

    def _linked_rules(self, subfields: list[Subfield]) -> _TagRules | None:
        # An 880 holds the alternate-script copy of the field its $6 names ("561-01/$1").
        for code, value in subfields:
            if code == "6":
                return self._by_tag.get(value[:3])
        return None

    def _mask_subfields(
        self, rules: _TagRules | None, ind1: str, subfields: list[Subfield]
    ) -> list[Subfield]:
        scrub = self._scrubber.scrub
        masked: list[Subfield] = []
        for sub in subfields:
            rule = rules.get(sub.code) if rules else None
            if rule is None or ind1 in rule.keep_when_ind1:
                value = scrub(sub.value)
                masked.append(sub if value is sub.value else Subfield(sub.code, value))
                continue
            self._rule_counts[rule.rule] += 1
            if rule.action is MaskAction.HASH:
                masked.append(Subfield(sub.code, self.hash_value(sub.value)))
            elif rule.action is MaskAction.REDACT:
                masked.append(Subfield(sub.code, self._marker))
        return masked

    def mask_record(self, record: Record, *, share_unchanged: bool = False) -> Record:
        """A masked copy of `record`; the original and its fields are never modified.

        Policy subfields are hashed, redacted or dropped (a field left with no subfields is
        left out); values in `scrub_record_tags` fields go through the scrubbers. Control
        fields (00X) are coded data and are copied as they are.

        By default every field of the copy is a new object, so editing the copy can never
        reach the original (the ILS payload). `share_unchanged=True` reuses the original's
        Field objects for fields that masking leaves alone (a fifth cheaper): use it only
        for a copy that is serialised and dropped (reject file, report, diff), never edited.
        """
        plan_for = self._plan.__getitem__
        may_match = self._scrubber.may_match
        new_field = Field.__new__
        masked_fields: list[Field] = []
        append = masked_fields.append
        for field in record.fields:
            tag = field.tag
            plan = plan_for(tag)
            if plan is _CONTROL:
                if share_unchanged:
                    append(field)
                    continue
                copy = new_field(Field)
                copy.tag = tag
                copy.data = field.data
                copy._indicators = None
                copy.subfields = []
                copy.control_field = True
                append(copy)
                continue
            subfields = field.subfields
            if plan is _COPY or (
                plan is _SCAN and not may_match("\x1f".join(map(_value, subfields)))
            ):
                if share_unchanged:
                    append(field)
                    continue
                subfields = subfields[:]
            elif plan is _SCAN:
                subfields = self._mask_subfields(None, " ", subfields)
            else:
                rules = self._linked_rules(subfields) if plan is _LINKED else plan
                indicators = field._indicators
                subfields = self._mask_subfields(
                    rules, indicators[0] if indicators else " ", subfields
                )
                if not subfields and field.subfields:
                    continue
            copy = new_field(Field)
            copy.tag = tag
            copy.data = None
            copy._indicators = field._indicators
            copy.subfields = subfields
            copy.control_field = False
            append(copy)
        masked = Record.__new__(Record)
        masked.leader = type(record.leader)(str(record.leader))
        masked.fields = masked_fields
        masked.pos = 0
        masked.force_utf8 = record.force_utf8
        masked.to_unicode = record.to_unicode
        return masked

    def mask_value(self, tag: str, ind1: str, code: str, value: str) -> str | None:
        """One subfield value as masked output shows it; None when the policy drops it.

        For an 880, pass the tag its $6 links to. Values no rule names are scrubbed.
        """
        rules = self._by_tag.get(tag)
        rule = rules.get(code) if rules else None
        if rule is None or ind1 in rule.keep_when_ind1:
            return self._scrubber.scrub(value)
        self._rule_counts[rule.rule] += 1
        if rule.action is MaskAction.HASH:
            return self.hash_value(value)
        if rule.action is MaskAction.REDACT:
            return self._marker
        return None

    # -- raw records (reject files) --------------------------------------------------------

    def mask_raw(self, data: bytes, fmt: RecordFormat) -> bytes:
        """Mask one or more raw records of a delivery format, as a reject file keeps them.

        iso2709 -> mask_raw_iso2709; marcxml -> mask_raw_marcxml; bibframe (no MARC fields to
        go by) keeps its markup and loses every text node.
        """
        if fmt == "iso2709":
            return self.mask_raw_iso2709(data)
        return self.mask_raw_marcxml(data)

    def mask_raw_marcxml(self, data: bytes) -> bytes:
        """Mask MARCXML record bytes, well-formed or not (see catalog_sync.privacy.marcxml)."""
        masked, structured = mask_marcxml(data, self.mask_value, self._scrubber.scrub, self._marker)
        if not structured and data.strip():
            self._rule_counts["raw:unknown-structure"] += 1
        return masked

    def mask_raw_iso2709(self, data: bytes) -> bytes:
        """Mask raw ISO 2709 bytes (one or more records) without needing pymarc to parse them.

        Records are split on the record terminator and each is masked by structure:
        - directory offsets valid: policy subfields masked, every data field value scrubbed
          (all tags, not only `scrub_record_tags`: reject files are few; control fields are
          coded data and left alone, as in mask_record), and the record rebuilt with
          correct lengths (pymarc reads it); a record with nothing to mask is returned byte for
          byte, bad leader lengths included;
        - directory readable but offsets wrong: fields are taken in directory order from the
          field terminators and masked the same way; leader and directory are kept as received
          so the structural fault that got the record rejected is still visible;
        - structure unknown (no plausible leader or directory): the leader is kept if plausible
          and every other run of bytes between delimiters is replaced by the redaction marker.
        """
        pieces = data.split(RECORD_TERMINATOR)
        out: list[bytes] = []
        for i, piece in enumerate(pieces):
            terminated = i < len(pieces) - 1
            if not piece and not terminated:
                continue
            out.append(self._mask_raw_record(piece) + (RECORD_TERMINATOR if terminated else b""))
        return b"".join(out)

    def _redact_unknown(self, data: bytes) -> bytes:
        """Every run of bytes between delimiters that is not blank becomes the marker."""
        marker = self._marker.encode("utf-8")
        redacted = _CONTENT_RUN.sub(lambda m: marker if m.group().strip() else m.group(), data)
        if data.strip():
            self._rule_counts["raw:unknown-structure"] += 1
        return redacted

    def _mask_raw_record(self, body: bytes) -> bytes:
        leader = body[:24]
        if len(body) < 24 or not plausible_leader(leader):
            return self._redact_unknown(body)
        dir_end = body.find(FIELD_TERMINATOR, 24)
        directory = body[24:dir_end] if dir_end >= 0 else b""
        entries = directory_entries(directory)
        if entries is None:
            return leader + self._redact_unknown(body[24:])
        area = body[dir_end + 1 :]
        fields = fields_by_offset(entries, area)
        if fields is not None:
            masked = [(tag, self._mask_raw_field(tag, content)) for tag, content in fields]
            if all(new == old for (_, new), (_, old) in zip(masked, fields, strict=True)):
                return body  # nothing to mask: keep the record exactly as received
            return build_record(leader, [(t, c) for t, c in masked if c is not None])
        # Offsets are wrong: take the fields in directory order between field terminators,
        # and keep every terminator (or its absence, in a truncated record) as received.
        segments = area.split(FIELD_TERMINATOR)
        complete = segments[:-1] if segments[-1] == b"" else segments
        if len(complete) != len(entries):
            return leader + directory + FIELD_TERMINATOR + self._redact_unknown(area)
        for i, ((tag, _, _), content) in enumerate(zip(entries, complete, strict=True)):
            masked_content = self._mask_raw_field(tag, content)
            # The directory stays as received, so a fully dropped field keeps its indicators.
            segments[i] = masked_content if masked_content is not None else content[:2]
        return leader + directory + FIELD_TERMINATOR + FIELD_TERMINATOR.join(segments)

    def _mask_raw_field(self, tag: bytes, content: bytes) -> bytes | None:
        """One field's bytes masked; None when every subfield was dropped."""
        scrub = self._scrubber.scrub_bytes
        tag_text = tag.decode("latin-1")
        if tag_text < "010" and tag_text.isdigit():
            return content  # control field: coded data (as in mask_record), never scrubbed
        if SUBFIELD_DELIMITER not in content:
            return scrub(content)
        parts = content.split(SUBFIELD_DELIMITER)
        indicators, subfields = parts[0], parts[1:]
        if tag_text == "880":
            link = next((p[1:4] for p in subfields if p[:1] == b"6"), b"")
            rules = self._by_tag.get(link.decode("latin-1"))
        else:
            rules = self._by_tag.get(tag_text)
        ind1 = indicators[:1].decode("latin-1") or " "
        kept: list[bytes] = []
        for part in subfields:
            code = part[:1].decode("latin-1")
            rule = rules.get(code) if rules else None
            if rule is None or ind1 in rule.keep_when_ind1:
                kept.append(scrub(part))
                continue
            self._rule_counts[rule.rule] += 1
            if rule.action is MaskAction.HASH:
                kept.append(part[:1] + self.hash_value(part[1:]).encode("ascii"))
            elif rule.action is MaskAction.REDACT:
                kept.append(part[:1] + self._marker.encode("utf-8"))
        if not kept:
            return None
        return scrub(indicators) + b"".join(SUBFIELD_DELIMITER + p for p in kept)
