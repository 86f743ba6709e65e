"""Draws a Trace (tessera.os.trace): a heat map of the ring's links and a message sequence chart, as a scene of
rectangles, lines and text that `svg` writes as SVG and tessera.os.trace_png rasterises.

Top: the ring's stops in ring order (tiles, the I/O node if any, the host), each with its messages received and
sent in the window; between them the links, coloured by the DATA slots that crossed them (white = none, red = the
busiest link), the link from the host back to tile 0 drawn below. Bottom: one lifeline per stop, time downwards;
messages to and from the host as observed (solid, one arrow each; per sample interval when there are too many),
tile-to-tile traffic per sample interval as derived (dashed, labelled with the count).

SVG elements carry what they show as attributes, so the file can be checked by a program: links are
`<line class="link" data-from=".." data-to=".." data-load="N">`, stops `<rect class="stop" data-stop=".."
data-in="N" data-out="N">`, arrows `<line class="message|derived" data-from=".." data-to=".." data-count="N">`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from tessera.os.trace import HOST, Trace, estimate_pairs, link_loads, ring_stops, tile_counts

#: Beyond this many host messages the chart draws them per sample interval, like the derived traffic.
MAX_ARROWS = 150
BOX_W, BOX_H, GAP = 96, 46, 44
MARGIN = 24
RING_Y = 64
CHART_TOP = RING_Y + BOX_H + 96
CHART_H = 420
HEAT = (200, 30, 30)
WHITE = (255, 255, 255)
INK = (30, 30, 30)
GREY = (150, 150, 150)
BLUE = (40, 80, 200)


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: tuple[int, int, int]
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    colour: tuple[int, int, int]
    width: float = 1.0
    dashed: bool = False
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: int = 11
    anchor: str = "middle"  # start | middle | end


Shape = Rect | Line | Text


@dataclass
class Scene:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)


def heat(fraction: float) -> tuple[int, int, int]:
    fraction = min(1.0, max(0.0, fraction))
    return tuple(round(w + (h - w) * fraction) for w, h in zip(WHITE, HEAT))  # type: ignore[return-value]


def scene(trace: Trace) -> Scene:
    stops = ring_stops(trace)
    pairs = estimate_pairs(trace)
    loads = link_loads(trace, pairs)
    counts = tile_counts(trace)
    width = max(720, 2 * MARGIN + len(stops) * (BOX_W + GAP) - GAP)
    out = Scene(width, CHART_TOP + CHART_H + 40)
    x_of = {stop: MARGIN + index * (BOX_W + GAP) for index, stop in enumerate(stops)}
    centre = {stop: x + BOX_W / 2 for stop, x in x_of.items()}
    busiest = max(loads) if loads and max(loads) > 0 else 1.0
    messages = sum(pairs.values())
    out.shapes.append(Text(MARGIN, 22, f"tessera trace  {trace.target}  {trace.seconds:.2f} s  "
                                       f"{round(messages)} messages", 13, "start"))
    out.shapes.append(Text(MARGIN, 40, "link load: DATA slots per ring link (tile-to-tile traffic derived from "
                                       "the message counters, host traffic observed)", 10, "start"))
    for index, stop in enumerate(stops):  # the links first, the boxes over them
        following = stops[(index + 1) % len(stops)]
        load = loads[index]
        attrs = {"class": "link", "data-from": trace.label(stop), "data-to": trace.label(following),
                 "data-load": str(round(load))}
        colour = heat(load / busiest)
        if index + 1 < len(stops):
            x1, x2, y = x_of[stop] + BOX_W, x_of[following], RING_Y + BOX_H / 2
            out.shapes.append(Rect(x1, y - 7, x2 - x1, 14, colour, {"class": "link-band"}))
            out.shapes.append(Line(x1, y, x2, y, INK, 1.0, attrs=attrs))
            out.shapes.append(Text((x1 + x2) / 2, y - 10, str(round(load)), 10))
        else:  # back from the host to tile 0, below the row (through the ring's pad registers)
            y = RING_Y + BOX_H + 30
            left, right = centre[stops[0]], centre[stop]
            out.shapes.append(Rect(left, y - 7, right - left, 14, colour, {"class": "link-band"}))
            out.shapes.append(Line(right, y, left, y, INK, 1.0, attrs=attrs))
            out.shapes.append(Line(right, RING_Y + BOX_H, right, y, INK))
            out.shapes.append(Line(left, y, left, RING_Y + BOX_H, INK))
            out.shapes.append(Text((left + right) / 2, y + 22, f"{round(load)} (back to tile 0)", 10))
    for stop in stops:
        x = x_of[stop]
        attrs = {"class": "stop", "data-stop": trace.label(stop)}
        detail = ""
        if isinstance(stop, int):
            attrs |= {"data-in": str(counts[stop][0]), "data-out": str(counts[stop][1])}
            detail = f"in {counts[stop][0]} out {counts[stop][1]}"
        out.shapes.append(Rect(x, RING_Y, BOX_W, BOX_H, (235, 240, 250), attrs))
        out.shapes.append(Text(x + BOX_W / 2, RING_Y + 18, trace.label(stop), 11))
        out.shapes.append(Text(x + BOX_W / 2, RING_Y + 36, detail, 10))
    _chart(out, trace, stops, centre)
    return out


def _chart(out: Scene, trace: Trace, stops: list[int | str], centre: dict[int | str, float]) -> None:
    seconds = max(trace.seconds, 1e-9)
    t0 = trace.samples[0][0]

    def y_at(t: float) -> float:
        return CHART_TOP + CHART_H * (t - t0) / seconds

    out.shapes.append(Text(MARGIN, CHART_TOP - 30, "message sequence chart: host messages observed (solid), "
                                                   "tile-to-tile traffic per sample interval derived (dashed)",
                           10, "start"))
    for stop in stops:
        out.shapes.append(Line(centre[stop], CHART_TOP - 12, centre[stop], CHART_TOP + CHART_H, GREY, 1.0))
        out.shapes.append(Text(centre[stop], CHART_TOP - 16, trace.label(stop), 10))
    out.shapes.append(Text(MARGIN, CHART_TOP + CHART_H + 16, f"0 s ... {seconds:.2f} s", 10, "start"))
    host_messages = trace.messages if len(trace.messages) <= MAX_ARROWS else []
    for message in host_messages:
        y = y_at(message.time)
        attrs = {"class": "message", "data-from": trace.label(message.source), "data-to": trace.label(message.dest),
                 "data-count": "1", "data-tag": str(message.tag)}
        _arrow(out, centre[message.source], centre[message.dest], y, BLUE, False, attrs, "")
    for index in range(len(trace.samples) - 1):
        pairs = estimate_pairs(trace, index, index + 1)
        y = (y_at(trace.samples[index][0]) + y_at(trace.samples[index + 1][0])) / 2
        for (source, dest), count in sorted(pairs.items(), key=str):
            if round(count) == 0 or (host_messages and HOST in (source, dest)):
                continue
            derived = HOST not in (source, dest)
            attrs = {"class": "derived" if derived else "message", "data-from": trace.label(source),
                     "data-to": trace.label(dest), "data-count": str(round(count))}
            _arrow(out, centre[source], centre[dest], y, INK if derived else BLUE, derived, attrs,
                   f"x{round(count)}")


def _arrow(out: Scene, x1: float, x2: float, y: float, colour: tuple[int, int, int], dashed: bool,
           attrs: dict[str, str], label: str) -> None:
    if x1 == x2:  # to itself: a small loop to the right
        out.shapes.append(Line(x1, y - 3, x1 + 14, y - 3, colour, 1.2, dashed, attrs))
        out.shapes.append(Line(x1 + 14, y - 3, x1 + 14, y + 3, colour, 1.2, dashed))
        out.shapes.append(Line(x1 + 14, y + 3, x1, y + 3, colour, 1.2, dashed))
    else:
        out.shapes.append(Line(x1, y, x2, y, colour, 1.2, dashed, attrs))
        head = -6 if x2 > x1 else 6
        out.shapes.append(Line(x2, y, x2 + head, y - 3, colour, 1.2))
        out.shapes.append(Line(x2, y, x2 + head, y + 3, colour, 1.2))
    if label:
        out.shapes.append(Text((x1 + x2) / 2 + (16 if x1 == x2 else 0), y - 3, label, 9))


def svg(drawing: Scene) -> str:
    """The scene as a standalone SVG document."""
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{drawing.width}" height="{drawing.height}" '
             f'viewBox="0 0 {drawing.width} {drawing.height}" font-family="sans-serif">',
             f'<rect x="0" y="0" width="{drawing.width}" height="{drawing.height}" fill="white"/>']
    for shape in drawing.shapes:
        extra = "".join(f" {key}={quoteattr(value)}" for key, value in getattr(shape, "attrs", {}).items())
        if isinstance(shape, Rect):
            lines.append(f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{shape.w:.1f}" height="{shape.h:.1f}" '
                         f'fill="{_hex(shape.fill)}" stroke="#999"{extra}/>')
        elif isinstance(shape, Line):
            dash = ' stroke-dasharray="4 3"' if shape.dashed else ""
            lines.append(f'<line x1="{shape.x1:.1f}" y1="{shape.y1:.1f}" x2="{shape.x2:.1f}" y2="{shape.y2:.1f}" '
                         f'stroke="{_hex(shape.colour)}" stroke-width="{shape.width}"{dash}{extra}/>')
        else:
            lines.append(f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size}" '
                         f'text-anchor="{shape.anchor}">{escape(shape.text)}</text>')
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def _hex(colour: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in colour)
