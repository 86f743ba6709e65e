"""`python -m tessera.hw.tile_map`: an SVG picture of the chip's tile map for the README.

The picture is computed from the chip top's parameters with the chip's own placement rules: tiles at addresses
and ring positions 0..T-1, the I/O node (when the chip has LEDs or buttons) at address and position T
(`tessera.hw.io_node.io_address`), the host's node (address HOST_NODE) last with the host bridge on it, and
`ring_length` registers in all, the ones after the last stop being plain padding. The flits travel one way
round the ring. tests/test_tile_map.py keeps docs/img/tile-map.svg equal to what this writes for README_CHIP.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from tessera.hw.io_node import io_address
from tessera.hw.noc_layouts import HOST_NODE, ring_length

#: The configuration the README shows: the virtual board's chip with the iCEBreaker's LEDs and button.
README_CHIP = {"tiles": 8, "mem_bytes": 4096, "mailbox_depth": 8, "leds": 2, "buttons": 1}
README_SVG = Path(__file__).resolve().parent.parent / "docs" / "img" / "tile-map.svg"

BOX_W, BOX_H = 118, 64
GAP = 34
MARGIN = 24
ROW_GAP = 70
BRIDGE_H = 56
COLOURS = {"tile": "#dbe9f6", "io": "#fde9c8", "host": "#e2f0d9", "pad": "#eeeeee"}


@dataclass(frozen=True)
class Stop:
    kind: str  # "tile", "io" or "host"
    title: str
    lines: tuple[str, ...]


def stops(tiles: int, mem_bytes: int, mailbox_depth: int, leds: int, buttons: int) -> list[Stop]:
    """The ring's stops in ring order, as hw/chip.py places them."""
    out = [Stop("tile", f"tile {index}", ("RV32I core", f"{mem_bytes} B memory", f"mailbox x{mailbox_depth}"))
           for index in range(tiles)]
    if leds or buttons:
        out.append(Stop("io", f"I/O node {io_address(tiles)}", ("services led, button", f"LEDs: {leds}",
                                                                  f"buttons: {buttons}")))
    out.append(Stop("host", f"host node {HOST_NODE}", ("message unit", f"mailbox x{mailbox_depth}", "")))
    return out


def svg(tiles: int, mem_bytes: int, mailbox_depth: int, leds: int = 0, buttons: int = 0) -> str:
    """The tile map as an SVG document (text)."""
    ring = stops(tiles, mem_bytes, mailbox_depth, leds, buttons)
    pads = ring_length(len(ring)) - len(ring)
    top = -(-len(ring) // 2)  # stops on the top row (left to right); the rest come back on the bottom row
    columns = max(top, 1)
    width = 2 * MARGIN + columns * BOX_W + (columns - 1) * GAP + 2 * GAP
    y_top = MARGIN + 20
    y_bottom = y_top + BOX_H + ROW_GAP
    height = y_bottom + BOX_H + GAP + BRIDGE_H + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{MARGIN}" y="{MARGIN + 4}" font-size="13" font-weight="bold">Tessera chip: {tiles} tiles'
             f'{", I/O node" if leds or buttons else ""}, host bridge; one-way slotted ring of '
             f'{ring_length(len(ring))} registers{f" ({pads} of them padding)" if pads else ""}</text>']
    positions: list[tuple[float, float]] = []
    for index in range(len(ring)):
        if index < top:
            x = MARGIN + GAP + index * (BOX_W + GAP)
            y = y_top
        else:
            x = MARGIN + GAP + (len(ring) - 1 - index) * (BOX_W + GAP)
            y = y_bottom
        positions.append((x, y))
    for stop, (x, y) in zip(ring, positions):
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{COLOURS[stop.kind]}" '
                     f'stroke="#333"/>')
        parts.append(f'<text x="{x + BOX_W / 2}" y="{y + 17}" text-anchor="middle" font-weight="bold">'
                     f'{escape(stop.title)}</text>')
        for line_number, line in enumerate(stop.lines):
            parts.append(f'<text x="{x + BOX_W / 2}" y="{y + 32 + 13 * line_number}" text-anchor="middle">'
                         f'{escape(line)}</text>')
    for index in range(len(ring) - 1):  # ring links between consecutive stops
        (x0, y0), (x1, y1) = positions[index], positions[index + 1]
        if y0 == y1:
            forward = x1 > x0
            start = x0 + (BOX_W if forward else 0)
            end = x1 + (0 if forward else BOX_W)
            parts.append(_arrow(start, y0 + BOX_H / 2, end, y1 + BOX_H / 2))
        else:  # down the right-hand side
            right = max(x0, x1) + BOX_W + GAP / 2
            parts.append(_path(f"M {x0 + BOX_W} {y0 + BOX_H / 2} H {right} V {y1 + BOX_H / 2} H {x1 + BOX_W}"))
    # back from the last stop through the padding registers to tile 0, up the left-hand side
    (xl, yl), (xf, yf) = positions[-1], positions[0]
    left = MARGIN + GAP / 2
    parts.append(_path(f"M {xl} {yl + BOX_H / 2} H {left} V {yf + BOX_H / 2} H {xf}"))
    if pads:
        label_y = (yf + BOX_H + yl) / 2 + 4
        parts.append(f'<rect x="{left - 9}" y="{label_y - 13}" width="18" height="18" fill="{COLOURS["pad"]}" '
                     f'stroke="#555"/>')
        parts.append(f'<text x="{left + 14}" y="{label_y}">{pads} padding registers</text>')
    # the host bridge hangs off the host's node
    hx, hy = positions[-1]
    bridge_y = hy + BOX_H + GAP
    parts.append(_arrow(hx + BOX_W / 2, hy + BOX_H, hx + BOX_W / 2, bridge_y, both=True))
    parts.append(f'<rect x="{hx - 20}" y="{bridge_y}" width="{BOX_W + 40}" height="{BRIDGE_H}" rx="6" '
                 f'fill="{COLOURS["host"]}" stroke="#333"/>')
    parts.append(f'<text x="{hx + BOX_W / 2}" y="{bridge_y + 18}" text-anchor="middle" font-weight="bold">host '
                 f'bridge</text>')
    parts.append(f'<text x="{hx + BOX_W / 2}" y="{bridge_y + 33}" text-anchor="middle">UART, framed, CRC;</text>')
    parts.append(f'<text x="{hx + BOX_W / 2}" y="{bridge_y + 47}" text-anchor="middle">to the host OS (Python)'
                 f'</text>')
    if leds or buttons:
        ix, iy = positions[tiles]
        pins_y = iy + BOX_H + GAP if iy == y_bottom else iy - 12
        if iy == y_bottom:
            parts.append(_arrow(ix + BOX_W / 2, iy + BOX_H, ix + BOX_W / 2, pins_y, both=True))
            parts.append(f'<text x="{ix + BOX_W / 2}" y="{pins_y + 14}" text-anchor="middle">board LEDs and '
                         f'buttons</text>')
        else:
            parts.append(f'<text x="{ix + BOX_W / 2}" y="{pins_y}" text-anchor="middle">board LEDs and buttons'
                         f'</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _arrow(x0: float, y0: float, x1: float, y1: float, both: bool = False) -> str:
    start = ' marker-start="url(#arrow)"' if both else ""
    return f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#555" stroke-width="1.5"{start} ' \
           f'marker-end="url(#arrow)"/>'


def _path(d: str) -> str:
    return f'<path d="{d}" fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tessera.hw.tile_map", description=__doc__.splitlines()[0])
    for name, value in README_CHIP.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    parser.add_argument("-o", "--output", type=Path, default=README_SVG)
    args = parser.parse_args(argv)
    if args.tiles < 1:
        parser.error(f"--tiles {args.tiles}: a chip has at least one tile")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(svg(args.tiles, args.mem_bytes, args.mailbox_depth, args.leds, args.buttons))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
