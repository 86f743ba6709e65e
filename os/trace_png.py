"""Rasterises a trace scene (tessera.os.trace_draw) into an RGB PNG with the standard library only: filled
rectangles with a border, 1-pixel lines (dashed when asked), and text in a built-in 3x5 pixel font (upper case,
digits and a little punctuation; scaled up for larger sizes)."""

from __future__ import annotations

import struct
import zlib

from tessera.os.trace_draw import Line, Rect, Scene, Text

# Each glyph: five rows of three pixels, "1" = ink.
_FONT_ROWS = {
    "0": "111 101 101 101 111", "1": "010 110 010 010 111", "2": "111 001 111 100 111", "3": "111 001 011 001 111",
    "4": "101 101 111 001 001", "5": "111 100 111 001 111", "6": "111 100 111 101 111", "7": "111 001 010 010 010",
    "8": "111 101 111 101 111", "9": "111 101 111 001 111", "A": "010 101 111 101 101", "B": "110 101 110 101 110",
    "C": "011 100 100 100 011", "D": "110 101 101 101 110", "E": "111 100 110 100 111", "F": "111 100 110 100 100",
    "G": "011 100 101 101 011", "H": "101 101 111 101 101", "I": "111 010 010 010 111", "J": "001 001 001 101 010",
    "K": "101 101 110 101 101", "L": "100 100 100 100 111", "M": "101 111 111 101 101", "N": "110 101 101 101 101",
    "O": "010 101 101 101 010", "P": "110 101 110 100 100", "Q": "010 101 101 110 011", "R": "110 101 110 101 101",
    "S": "011 100 010 001 110", "T": "111 010 010 010 010", "U": "101 101 101 101 111", "V": "101 101 101 101 010",
    "W": "101 101 111 111 101", "X": "101 101 010 101 101", "Y": "101 101 010 010 010", "Z": "111 001 010 100 111",
    ".": "000 000 000 000 010", ",": "000 000 000 010 100", ":": "000 010 000 010 000", "-": "000 000 111 000 000",
    "/": "001 001 010 100 100", "(": "010 100 100 100 010", ")": "010 001 001 001 010", "=": "000 111 000 111 000",
    ">": "100 010 001 010 100", "_": "000 000 000 000 111", "%": "101 001 010 100 101", "+": "000 010 111 010 000",
    " ": "000 000 000 000 000",
}
FONT = {char: [row for row in rows.split()] for char, rows in _FONT_ROWS.items()}
UNKNOWN = ["111", "101", "101", "101", "111"]
BORDER = (153, 153, 153)


class Canvas:
    """An RGB pixel buffer, white to start."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(b"\xff" * (3 * width * height))

    def put(self, x: int, y: int, colour: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            index = 3 * (y * self.width + x)
            self.pixels[index:index + 3] = bytes(colour)

    def rect(self, shape: Rect) -> None:
        x0, y0 = round(shape.x), round(shape.y)
        x1, y1 = round(shape.x + shape.w), round(shape.y + shape.h)
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                edge = y in (y0, y1) or x in (x0, x1)
                self.put(x, y, BORDER if edge else shape.fill)

    def line(self, shape: Line) -> None:
        x0, y0, x1, y1 = round(shape.x1), round(shape.y1), round(shape.x2), round(shape.y2)
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for step in range(steps + 1):
            if shape.dashed and step % 7 >= 4:
                continue
            self.put(round(x0 + (x1 - x0) * step / steps), round(y0 + (y1 - y0) * step / steps), shape.colour)

    def text(self, shape: Text, colour: tuple[int, int, int] = (30, 30, 30)) -> None:
        scale = 2 if shape.size >= 13 else 1
        advance = 4 * scale
        width = advance * len(shape.text)
        x = round(shape.x - {"start": 0, "middle": width / 2, "end": width}[shape.anchor])
        top = round(shape.y) - 5 * scale
        for char in shape.text.upper():
            for row, bits in enumerate(FONT.get(char, UNKNOWN)):
                for column, bit in enumerate(bits):
                    if bit == "1":
                        for dy in range(scale):
                            for dx in range(scale):
                                self.put(x + column * scale + dx, top + row * scale + dy, colour)
            x += advance


def render(drawing: Scene) -> Canvas:
    canvas = Canvas(drawing.width, drawing.height)
    for shape in drawing.shapes:
        if isinstance(shape, Rect):
            canvas.rect(shape)
        elif isinstance(shape, Line):
            canvas.line(shape)
        else:
            canvas.text(shape)
    return canvas


def png(drawing: Scene) -> bytes:
    """The scene as an 8-bit RGB PNG."""
    canvas = render(drawing)
    stride = 3 * canvas.width
    raw = b"".join(b"\x00" + bytes(canvas.pixels[row * stride:(row + 1) * stride]) for row in range(canvas.height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", canvas.width, canvas.height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
