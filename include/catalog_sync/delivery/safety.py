"""What a vendor may name and where it may send us: file names, origins, unpacking bounds.

A vendor's listing is input like any other. Names from it become paths on the worker, URLs
from it receive our credentials, and archives from it expand on our disk, so each is checked
here before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# Bytes of UTF-8 a vendor file name may have. The longest path component built from one is
# the archived copy's temporary name, `.<sha256>__<name>.<8 hex>.partial` (84 bytes more), and
# it must fit the 255-byte limit of common file systems.
MAX_NAME_BYTES = 160

_DEFAULT_PORTS = {"http": 80, "https": 443}


def name_problem(name: str) -> str | None:
    """Why `name` is not a plain base name safe to land, or None when it is.

    Allowed: a single path component, not `.` or `..`, no leading dot (those are our hidden
    temporary files) or dash, no NUL or other control character, at most MAX_NAME_BYTES bytes.
    """
    if not name:
        return "unsafe name: empty"
    if "/" in name or "\\" in name:
        return "unsafe name: contains a path separator"
    if name in (".", ".."):
        return "unsafe name: a directory reference"
    if name.startswith("."):
        return "unsafe name: starts with a dot"
    if name.startswith("-"):
        # Operators list and clean landing folders from a shell: `rm *` would read it as options.
        return "unsafe name: starts with a dash"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "unsafe name: contains a NUL or control character"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "unsafe name: not valid Unicode"
    if size > MAX_NAME_BYTES:
        return f"unsafe name: {size} bytes long, more than {MAX_NAME_BYTES}"
    return None


# How much of a refused name a report shows: enough to find it in the vendor's listing.
MAX_SHOWN_CHARS = 200


def printable_text(text: str) -> str:
    """`text` with every character that is not printable (control characters, line and
    paragraph separators, bidi overrides) written as a Python escape: one inert line."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def printable_name(name: str) -> str:
    """A vendor's file name as one inert line of a report: printable_text, the backslash
    escaped too (so no shown name passes for another), and a long name cut with a note of
    how much was left.
    """
    out = printable_text(name[:MAX_SHOWN_CHARS].replace("\\", "\\\\"))
    if len(name) > MAX_SHOWN_CHARS:
        out += f"... ({len(name) - MAX_SHOWN_CHARS} more characters)"
    return out


Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) of a URL, lower-cased and with the default port filled in.

    Raises ValueError for a URL without an http(s) scheme or a host.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    return scheme, parts.hostname.lower(), parts.port or _DEFAULT_PORTS[scheme]


def origin_label(origin: Origin) -> str:
    scheme, host, port = origin
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class UnpackLimits:
    """Bounds on what one packed delivery may expand to (all its members together)."""

    max_bytes: int = 4 << 30
    max_members: int = 1000
