"""Types: the Leader (status, record type, level, encoding) and 336/337/338 RDA types."""

from __future__ import annotations

from pymarc import Subfield

from catalog_sync.bibframe.errors import BibframeMappingError
from catalog_sync.bibframe.mapping.context import MappingContext
from catalog_sync.bibframe.rdfxml import BFLC, classes, code, label, nodes

# Leader/06 from the Work's class (manuscript variant second), LoC bibframe2marc spec.
_RECORD_TYPE: list[tuple[str, str, str]] = [
    ("NotatedMusic", "c", "d"),
    ("Cartography", "e", "f"),
    ("MovingImage", "g", "g"),
    ("MusicAudio", "j", "j"),
    ("NonMusicAudio", "i", "i"),
    ("Audio", "i", "i"),
    ("StillImage", "k", "k"),
    ("Multimedia", "m", "m"),
    ("Dataset", "m", "m"),
    ("Object", "r", "r"),
    ("MixedMaterial", "p", "p"),
    ("Text", "a", "t"),
]
# When a Work has no typed class, its RDA content type (bf:content) decides.
_CONTENT_TYPE = {
    "txt": "a", "tct": "a", "ntm": "c", "cri": "e", "crm": "e", "tdi": "g", "tdm": "g",
    "prm": "j", "spw": "i", "snd": "i", "sti": "k", "tdf": "r", "cod": "m", "cop": "m",
}  # fmt: skip
_ISSUANCE = {"mono": "m", "serl": "s", "intg": "i", "mulm": "m", "coll": "c", "integrating": "i"}


def leader(ctx: MappingContext) -> str:
    codes = {c for c, _ in ctx.statuses()}
    status = "d" if "d" in codes else "c" if "c" in codes else "n"
    work_classes = classes(ctx.work)
    # LoC's converter types the Work Manuscript (Leader/06 t, d, f); others type the Instance.
    manuscript = "Manuscript" in work_classes | classes(ctx.inst)
    record_type = ""
    for cls, plain, manu in _RECORD_TYPE:
        if cls in work_classes:
            record_type = manu if manuscript else plain
            break
    if not record_type:
        for n in nodes(ctx.work, "content"):
            record_type = _CONTENT_TYPE.get(code(n) or "", "")
            if record_type:
                break
    if not record_type:
        raise BibframeMappingError("unknown_work_type", ",".join(sorted(work_classes)))
    level = _bibliographic_level(ctx, work_classes)
    encoding, conventions = "u", set()
    for admin in ctx.admin():
        for n in nodes(admin, "encodingLevel", BFLC):
            value = code(n) or ""
            encoding = " " if value == "f" else value if len(value) == 1 else encoding
        conventions |= {code(n) or "" for n in nodes(admin, "descriptionConventions")}
    form = "a" if "aacr" in conventions else "i" if conventions & {"isbd", "rda"} else "u"
    return f"     {status}{record_type}{level} a22     {encoding}{form} 4500"


def _bibliographic_level(ctx: MappingContext, work_classes: set[str]) -> str:
    """Leader/07 from the Instance's issuance and the Work's Collection class.

    LoC's converter writes Leader/07 `c` as a Work typed Collection issued as multipart
    (mulm), and `d` (subunit of a collection) as a Work typed Collection issued as a
    monograph; without the Collection class, issuance alone decides.
    """
    issuance = ""
    for n in nodes(ctx.inst, "issuance"):
        issuance = code(n) or ""
    if "Collection" in work_classes:
        if issuance in ("mulm", "coll", ""):
            return "c"
        if issuance == "mono":
            return "d"
    return _ISSUANCE.get(issuance, "m")


def rda_types(ctx: MappingContext) -> None:
    for owner, name, tag, source in (
        (ctx.work, "content", "336", "rdacontent"),
        (ctx.inst, "media", "337", "rdamedia"),
        (ctx.inst, "carrier", "338", "rdacarrier"),
    ):
        for n in nodes(owner, name):
            term = label(n.element) if n.element is not None else None
            ctx.add(
                tag,
                " ",
                " ",
                [
                    Subfield("a", term or ""),
                    Subfield("b", code(n) or ""),
                    Subfield("2", source),
                ],
            )
