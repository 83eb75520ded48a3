"""Masking raw MARCXML record bytes (reject files) without needing them to be well-formed XML.

A record span from a vendor file may lack the namespace declaration of its wrapper, or be cut
off, so it is not parsed as XML: it is split into markup and text, and the text of each
`subfield` is masked by its `datafield`'s tag and first indicator (880s by their $6 link).
Markup is kept byte for byte; leader and control fields are coded data and kept as they are;
any other text outside subfields is scrubbed. Bytes with no MARCXML element
in them at all (BIBFRAME, garbage) keep their markup and lose every text node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

# (tag, ind1, code, value) -> masked value, or None when the policy drops the subfield.
ValueMask = Callable[[str, str, str, str], str | None]
Scrub = Callable[[str], str]

_TOKEN = re.compile(r"(<[^<>]*>)")
_TAG_NAME = re.compile(r"<\s*(/?)\s*(?:[\w.-]+:)?([\w.-]+)")
_ATTR = re.compile(r"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_MARC_ELEMENTS = frozenset({"record", "leader", "controlfield", "datafield", "subfield"})


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    try:
        return _ENTITY.sub(one, text)
    except (ValueError, OverflowError):  # a character reference out of range
        return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tag(token: str) -> tuple[bool, str, dict[str, str], bool]:
    """(closing, local name, attributes, self-closing) of a markup token."""
    m = _TAG_NAME.match(token)
    if m is None:  # comment, processing instruction, declaration
        return False, "", {}, False
    attrs = {k.split(":")[-1]: a if a is not None else b for k, a, b in _ATTR.findall(token)}
    return bool(m.group(1)), m.group(2), attrs, token.rstrip(">").rstrip().endswith("/")


@dataclass
class _Subfield:
    start: str
    code: str
    parts: list[str] = field(default_factory=list)
    end: str = ""


@dataclass
class _Datafield:
    tag: str
    ind1: str
    parts: list[str | _Subfield] = field(default_factory=list)


def mask_marcxml(
    data: bytes, mask_value: ValueMask, scrub: Scrub, marker: str
) -> tuple[bytes, bool]:
    """The MARCXML bytes with policy subfields masked and all other text scrubbed.

    The flag says whether MARCXML elements were found; without them every text is redacted.
    """
    text = data.decode("utf-8", "surrogateescape")
    tokens = [t for t in _TOKEN.split(text) if t]
    if not any(t.startswith("<") and _tag(t)[1] in _MARC_ELEMENTS for t in tokens):
        return _redact_text(tokens, scrub, marker).encode("utf-8", "surrogateescape"), False

    def scrub_text(t: str) -> str:
        plain = _unescape(t)
        scrubbed = scrub(plain)
        return t if scrubbed is plain else _escape(scrubbed)

    out: list[str] = []
    datafield: _Datafield | None = None
    subfield: _Subfield | None = None
    in_control = False  # inside <leader> or <controlfield>: coded data, kept as in mask_record
    for token in tokens:
        if not token.startswith("<"):
            if subfield is not None:
                subfield.parts.append(token)
            elif datafield is not None:
                datafield.parts.append(scrub_text(token))
            else:
                out.append(token if in_control else scrub_text(token))
            continue
        closing, name, attrs, empty = _tag(token)
        if name in ("leader", "controlfield") and datafield is None:
            in_control = not closing and not empty
        if name == "datafield" and not closing:
            if datafield is not None:  # the previous datafield lost its end tag
                out.append(_render(datafield, subfield, mask_value))
                subfield = None
            datafield = _Datafield(attrs.get("tag", ""), (attrs.get("ind1") or " ")[:1], [token])
            if empty:
                out.append(_render(datafield, None, mask_value))
                datafield = None
            continue
        if name == "datafield" and closing and datafield is not None:
            if subfield is not None:
                datafield.parts.append(subfield)
                subfield = None
            datafield.parts.append(token)
            out.append(_render(datafield, None, mask_value))
            datafield = None
            continue
        if name == "subfield" and datafield is not None:
            if not closing and not empty:
                if subfield is not None:  # the previous subfield lost its end tag
                    datafield.parts.append(subfield)
                subfield = _Subfield(token, attrs.get("code", "")[:1])
                continue
            if closing and subfield is not None:
                subfield.end = token
                datafield.parts.append(subfield)
                subfield = None
                continue
        target = (
            subfield.parts
            if subfield is not None
            else (datafield.parts if datafield is not None else out)
        )
        target.append(token)
    if datafield is not None:
        out.append(_render(datafield, subfield, mask_value))
    elif subfield is not None:
        out.append(subfield.start + scrub_text("".join(subfield.parts)))
    return "".join(out).encode("utf-8", "surrogateescape"), True


def _render(datafield: _Datafield, open_subfield: _Subfield | None, mask_value: ValueMask) -> str:
    parts = list(datafield.parts)
    if open_subfield is not None:
        parts.append(open_subfield)
    tag = datafield.tag
    if tag == "880":
        link = next((p for p in parts if isinstance(p, _Subfield) and p.code == "6"), None)
        if link is not None:
            tag = _unescape("".join(link.parts))[:3]
    rendered: list[str] = []
    for part in parts:
        if isinstance(part, str):
            rendered.append(part)
            continue
        value = _unescape("".join(p for p in part.parts if not p.startswith("<")))
        masked = mask_value(tag, datafield.ind1, part.code, value)
        if masked is None:
            continue
        if masked == value:
            rendered.append(part.start + "".join(part.parts) + part.end)
        else:
            rendered.append(part.start + _escape(masked) + part.end)
    return "".join(rendered)


def _redact_text(tokens: list[str], scrub: Scrub, marker: str) -> str:
    return "".join(
        scrub(t) if t.startswith("<") else (_escape(marker) if t.strip() else t) for t in tokens
    )
