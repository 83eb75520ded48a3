"""Control fields: 001/003 record id, 005 latest change, 008 fixed data, 041 languages."""

from __future__ import annotations

import re

from pymarc import Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping.context import MappingContext, local_id
from catalog_sync.bibframe.mapping.provision import provision_activities
from catalog_sync.bibframe.rdfxml import code, nodes, preferred_literals, props, uri_tail

_EDTF_YEAR = re.compile(r"(\d[\dXxu]{3})")


def record_id(ctx: MappingContext) -> tuple[str, str | None]:
    """001/003: the Instance's local id, else its URI's last segment, else the Work's."""
    for admin in [n.element for n in nodes(ctx.inst, "adminMetadata") if n.element is not None]:
        found = local_id(admin)
        if found:
            return found
    uri = ctx.desc.uri or ""
    if uri and not uri.startswith("_:"):
        tail = uri.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if tail:
            assigner = None
            for admin in ctx.admin():
                local = local_id(admin)
                assigner = local[1] if local else assigner
            return tail, assigner
    for admin in [n.element for n in nodes(ctx.work, "adminMetadata") if n.element is not None]:
        found = local_id(admin)
        if found:
            return found
    raise BibframeMappingError("no_record_id", "blank-node Instance without a local id")


def latest_transaction(ctx: MappingContext) -> str | None:
    """005 from the latest change date (a converter's generation date is not one)."""
    dates: list[str] = []
    for admin in ctx.admin():
        dates += preferred_literals(admin, "changeDate")
        is_change = any(code(n) == "c" for n in nodes(admin, "status"))
        if is_change and not props(admin, "generationProcess"):
            dates += preferred_literals(admin, "date")
    stamps = [_stamp(d) for d in dates]
    valid = [s for s in stamps if s]
    return max(valid) if valid else None


def _created(ctx: MappingContext) -> str:
    for admin in ctx.admin():
        for value in preferred_literals(admin, "creationDate"):
            if _stamp(value):
                return _stamp(value)[2:8]
    for status, admin in ctx.statuses():
        if status == "n":
            for value in preferred_literals(admin, "date"):
                if _stamp(value):
                    return _stamp(value)[2:8]
    return "||||||"


def fixed_data(ctx: MappingContext, languages: list[str]) -> str:
    """008 positions common to all material: entered, dates, place, language."""
    date_type, date1, date2 = "n", "uuuu", "    "
    place = "xx "
    for pa in provision_activities(ctx):
        dates = preferred_literals(pa, "date")
        if dates and date_type == "n":
            date_type, date1, date2 = _dates_008(dates[0])
        for n in nodes(pa, "place"):
            if n.uri and "/countries/" in n.uri and place == "xx ":
                place = f"{uri_tail(n.uri):<3}"[:3]
    language = languages[0] if languages else "|||"
    return f"{_created(ctx)}{date_type}{date1}{date2}{place}{'|' * 17}{language}||"


def languages(ctx: MappingContext) -> list[str]:
    out: list[str] = []
    for n in nodes(ctx.work, "language"):
        value = code(n) or uri_tail(n.uri)
        if len(value) == 3 and value.isalpha() and value not in out:
            out.append(value.lower())
    return out


def language_codes(ctx: MappingContext, languages: list[str]) -> None:
    if len(languages) > 1:
        ctx.add("041", "0", " ", [Subfield("a", v) for v in languages])


def _stamp(value: str) -> str:
    """An xsd date/dateTime as MARC 005 `yyyymmddhhmmss.f`; empty when not a date."""
    digits = re.sub(r"\D", "", value)[:14]
    if len(digits) < 8:
        return ""
    return f"{digits:0<14}.0"


def _dates_008(edtf: str) -> tuple[str, str, str]:
    """008/06-14 from an EDTF date: one year `s`, a range `m` (or `c` when open-ended)."""
    years = [y.replace("X", "u").replace("x", "u") for y in _EDTF_YEAR.findall(edtf)]
    if not years:
        return "n", "uuuu", "    "
    if edtf.rstrip().endswith(("/..", "/")):
        return "c", years[0], "9999"
    if len(years) > 1:
        return "m", years[0], years[1]
    return "s", years[0], "    "
