"""Regex scrubbing of PII (patron barcodes, e-mail addresses, phone numbers) in any text."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from catalog_sync.privacy.policy import PiiPolicy, ScrubberRule

_NEVER = r"(?!)"


class Scrubber:
    """All of a policy's scrubbers as one compiled alternation (one scan per string).

    `counts` tallies replacements as `scrub:<name>`, the keys the run manifest uses.
    """

    def __init__(self, rules: Iterable[ScrubberRule]) -> None:
        rules = tuple(rules)
        self._names = {f"s{i}": f"scrub:{r.name}" for i, r in enumerate(rules)}
        self._replacements = {f"s{i}": r.replacement for i, r in enumerate(rules)}
        alternation = "|".join(f"(?P<s{i}>{r.pattern})" for i, r in enumerate(rules))
        self._pattern = re.compile(alternation or _NEVER)
        # Almost no text holds PII, so the full patterns (slow: lookarounds, alternations) run
        # only after a cheap prefilter hit. Literal prefilters are substring tests; regex ones
        # are de-duplicated, so scrubbers sharing one prefilter cost a single scan.
        prefilters = [r.prefilter or r.pattern for r in rules]
        self._literals = tuple(dict.fromkeys(p for p in prefilters if re.escape(p) == p))
        regexes = list(dict.fromkeys(p for p in prefilters if re.escape(p) != p))
        self._prefilter = re.compile("|".join(f"(?:{p})" for p in regexes) or _NEVER)
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_policy(cls, policy: PiiPolicy) -> Scrubber:
        return cls(policy.scrubbers)

    def _replace(self, match: re.Match[str]) -> str:
        group = match.lastgroup or ""
        self.counts[self._names[group]] += 1
        return self._replacements[group]

    def may_match(self, text: str) -> bool:
        """False when no scrubber can match `text` (the cheap check `scrub` starts with)."""
        for literal in self._literals:
            if literal in text:
                return True
        return self._prefilter.search(text) is not None

    def scrub(self, text: str) -> str:
        """`text` with every scrubber match replaced; the same object when nothing matched."""
        if not text or not self.may_match(text):
            return text
        return self._pattern.sub(self._replace, text)

    def scrub_bytes(self, data: bytes) -> bytes:
        """Scrub bytes of unknown encoding without altering any byte outside a match."""
        # surrogateescape round-trips every byte, so MARC-8 or broken UTF-8 come back intact.
        text = data.decode("utf-8", "surrogateescape")
        scrubbed = self.scrub(text)
        return data if scrubbed is text else scrubbed.encode("utf-8", "surrogateescape")

    def scrub_value(self, value: object) -> object:
        """Scrub strings inside nested dicts/lists/tuples (structured log payloads)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {self.scrub(str(k)): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub_value(v) for v in value]
        return value
