"""Build the shipped MARC 21 rule data from the reference definitions (run by hand, not at runtime).

    python -m catalog_sync.marc.rulebook_build ../shared/reference include/catalog_sync/data/marc21

Inputs: timathom/marc-schema Avram JSON (bibliographic, authority, holdings; Apache-2.0) for the
current definitions, and LoC's "MARC 21 Format for Bibliographic Data: Field List" (ecbdlist.html)
for elements LoC marks [OBSOLETE]. Output: marc21_rules.json, one compact entry per tag.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

_FORMATS = {
    "bibliographic": "marc21_bibliographic_schema.json",
    "authority": "marc21_authority_schema.json",
    "holdings": "marc21_holdings_schema.json",
}

# The holdings schema's scraper left these without subfields (see the corpus MANIFEST); codes
# from the LoC MARC 21 Format for Holdings Data, 863-868 and 876-878 pages.
_HOLDINGS_GAPS = {
    "866": "axz268",
    "867": "axz268",
    "868": "axz268",
    "876": "abcdehjlprtxz368",
    "877": "abcdehjlprtxz368",
    "878": "abcdehjlprtxz368",
}

# Control fields each format defines (the Avram files split 006/007/008 per material type).
_CONTROL_TAGS = {
    "bibliographic": ("001", "003", "005", "006", "007", "008"),
    "authority": ("001", "003", "005", "008"),
    "holdings": ("001", "003", "004", "005", "006", "007", "008"),
}

_FIELD_LINE = re.compile(r"^([0-9X]{3}) - (.*)$")
_IND_LINE = re.compile(r"^\s+(First|Second) - (.*)$")
_CODE_LINE = re.compile(r"^\s+([0-9a-z#]|[0-9]-[0-9]) - (.*)$")
_SUBFIELD_LINE = re.compile(r"^\s+\$([0-9a-z]) - (.*)$")


def _expand(key: str) -> str:
    """'1-9' -> '123456789', 'a-$z' -> 'a..z', '#'/' ' -> ' '."""
    key = key.replace("$", "").replace("#", " ")
    if len(key) == 3 and key[1] == "-":
        return "".join(chr(c) for c in range(ord(key[0]), ord(key[2]) + 1))
    return key


def _indicator_codes(definition: dict[str, object] | None) -> str:
    if not isinstance(definition, dict):
        return " "
    codes = definition.get("codes") or {}
    assert isinstance(codes, dict)
    return "".join(sorted({c for key in codes for c in _expand(str(key))}))


def _from_avram(path: Path) -> dict[str, dict[str, object]]:
    fields = json.loads(path.read_text(encoding="utf-8"))["fields"]
    rules: dict[str, dict[str, object]] = {}
    for tag, body in fields.items():
        if not (len(tag) == 3 and tag.isdigit()):
            continue  # LDR and per-material 006/007/008 variants: positions, not tags
        entry: dict[str, object] = {"repeatable": bool(body.get("repeatable", True))}
        if tag >= "010":
            entry["ind1"] = _indicator_codes(body.get("indicator1"))
            entry["ind2"] = _indicator_codes(body.get("indicator2"))
            codes = {c for key in (body.get("subfields") or {}) for c in _expand(key)}
            entry["subfields"] = "".join(sorted(codes))
        rules[tag] = entry
    return rules


def _text_lines(html_path: Path) -> list[str]:
    text = re.sub(r"<[^>]*>", "", html_path.read_text(encoding="utf-8"))
    return [line for line in html.unescape(text).splitlines() if line.strip()]


def _obsolete_bibliographic(html_path: Path) -> dict[str, dict[str, str | bool]]:
    """Tags, indicator values and subfield codes LoC's field list marks [OBSOLETE]."""
    found: dict[str, dict[str, str | bool]] = {}
    tag: str | None = None
    indicator: str | None = None
    indicator_obsolete = False
    for line in _text_lines(html_path):
        obsolete = "[OBSOLETE]" in line
        if m := _FIELD_LINE.match(line):
            tag = m.group(1) if m.group(1).isdigit() else None
            indicator = None
            if tag is not None:
                entry = found.setdefault(
                    tag, {"tag": True, "ind1": "", "ind2": "", "subfields": ""}
                )
                # A tag listed twice (redefined) is obsolete only if every listing says so.
                entry["tag"] = bool(entry["tag"]) and obsolete
            continue
        if tag is None:
            continue
        entry = found[tag]
        if m := _IND_LINE.match(line):
            indicator = "ind1" if m.group(1) == "First" else "ind2"
            indicator_obsolete = obsolete
        elif (m := _SUBFIELD_LINE.match(line)) and obsolete:
            entry["subfields"] = str(entry["subfields"]) + m.group(1)
        elif (m := _CODE_LINE.match(line)) and indicator and (obsolete or indicator_obsolete):
            entry[indicator] = str(entry[indicator]) + _expand(m.group(1))
    return found


def build(reference: Path) -> dict[str, object]:
    formats: dict[str, dict[str, dict[str, object]]] = {}
    for name, file_name in _FORMATS.items():
        formats[name] = _from_avram(reference / "marc21-schema" / file_name)
        for tag in _CONTROL_TAGS[name]:
            formats[name].setdefault(tag, {"repeatable": tag in ("006", "007")})
    for tag, codes in _HOLDINGS_GAPS.items():
        entry = formats["holdings"].setdefault(tag, {"repeatable": True, "ind1": " ", "ind2": " "})
        entry["subfields"] = "".join(sorted(set(str(entry.get("subfields", "")) + codes)))
    bib = formats["bibliographic"]
    for tag, obs in _obsolete_bibliographic(reference / "loc" / "ecbdlist.html").items():
        current_entry = bib.get(tag)
        if current_entry is None:
            if obs["tag"]:
                bib[tag] = {"repeatable": True, "obsolete": True}
            continue
        for key in ("ind1", "ind2", "subfields"):
            current = str(current_entry.get(key, ""))
            old = "".join(sorted(set(str(obs[key])) - set(current)))
            if old:
                current_entry[f"obsolete_{key}"] = old
    return {
        "source": "timathom/marc-schema (Apache-2.0) + LoC MARC 21 Bibliographic Field List",
        "formats": {name: dict(sorted(rules.items())) for name, rules in formats.items()},
    }


def main(argv: list[str]) -> int:
    reference, out_dir = Path(argv[0]), Path(argv[1])
    data = build(reference)
    out = out_dir / "marc21_rules.json"
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
