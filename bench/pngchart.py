"""A horizontal bar chart as a PNG, in pure Python (zlib + a 5x7 bitmap font).

matplotlib is not in the project venv, and a chart of a dozen bars does not justify adding it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

# 5x7 glyphs, one string of 7 rows of 5 bits per character (upper case only).
_FONT = {
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "_": "00000 00000 00000 00000 00000 00000 11111",
    "/": "00001 00010 00010 00100 01000 01000 10000",
    "%": "11001 11010 00010 00100 01000 01011 10011",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
}
_GLYPHS = {c: [int(row, 2) for row in rows.split()] for c, rows in _FONT.items()}
SCALE = 2  # each font pixel is 2x2: 10x14 characters, 12 px advance
ADVANCE = 6 * SCALE
Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (170, 170, 170)
BASE: Color = (90, 90, 90)
BAR: Color = (52, 101, 164)
MISS: Color = (204, 0, 0)


class Canvas:
    """RGB pixels in rows of bytearrays."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.rows = [bytearray(WHITE * width) for _ in range(height)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = max(0, x0), min(self.width, x1)
        for y in range(max(0, y0), min(self.height, y1)):
            self.rows[y][3 * x0 : 3 * x1] = bytes(color) * (x1 - x0)

    def text(self, x: int, y: int, text: str, color: Color = BLACK) -> None:
        for ch in text.upper():
            glyph = _GLYPHS.get(ch, _GLYPHS["-"])
            for gy, bits in enumerate(glyph):
                for gx in range(5):
                    if bits & (1 << (4 - gx)):
                        px, py = x + gx * SCALE, y + gy * SCALE
                        self.rect(px, py, px + SCALE, py + SCALE, color)
            x += ADVANCE

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def bar_chart(
    path: Path,
    title: str,
    bars: Sequence[tuple[str, float, str]],
    *,
    reference: float | None = None,
    reference_label: str = "",
    highlight_below: float | None = None,
) -> Path:
    """Bars of (label, value, value text); a dashed line at `reference`; red below a threshold."""
    label_w = max(len(b[0]) for b in bars) * ADVANCE + 20
    plot_w, row_h = 520, 26
    value_w = max(len(b[2]) for b in bars) * ADVANCE + 20
    width = label_w + plot_w + value_w
    height = 60 + row_h * len(bars) + 40
    c = Canvas(width, height)
    c.text(10, 12, title)
    top = 44
    vmax = max([v for _, v, _ in bars] + [reference or 0]) or 1.0
    scale = plot_w / (vmax * 1.05)
    for i, (label, value, text) in enumerate(bars):
        y = top + i * row_h
        c.text(10, y + 5, label)
        color = MISS if highlight_below is not None and value < highlight_below else BAR
        c.rect(label_w, y + 3, label_w + max(1, int(value * scale)), y + row_h - 3, color)
        c.text(label_w + int(value * scale) + 8, y + 5, text)
    axis_y = top + row_h * len(bars)
    c.rect(label_w, top - 4, label_w + 1, axis_y + 4, BASE)
    if reference is not None:
        x = label_w + int(reference * scale)
        for y in range(top - 4, axis_y + 4, 8):
            c.rect(x, y, x + 2, y + 4, GREY)
        c.text(max(0, x - len(reference_label) * ADVANCE // 2), axis_y + 12, reference_label, BASE)
    path.write_bytes(c.png())
    return path
