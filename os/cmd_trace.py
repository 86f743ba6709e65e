"""`tessera trace --seconds S -o trace.svg|trace.png`: record the chip's message traffic for S seconds and draw a
heat map of the ring's links and a message sequence chart (tessera.os.trace says what is observed and what is
derived). Through the `tessera run` session when one serves the target, else over the link (`--image` names the
services and their send permissions)."""

from __future__ import annotations

import argparse
from pathlib import Path

FORMATS = (".svg", ".png")


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_target
    from tessera.os.trace import SAMPLE_INTERVAL_S

    parser = subparsers.add_parser("trace", help="record message traffic and draw a link heat map and a message "
                                                 "sequence chart (SVG or PNG)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the window (default 2)")
    parser.add_argument("-o", "--output", type=Path, default=Path("trace.svg"),
                        help="the drawing: .svg or .png (default trace.svg)")
    parser.add_argument("--interval", type=float, default=SAMPLE_INTERVAL_S,
                        help=f"seconds between counter samples (default {SAMPLE_INTERVAL_S:g})")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, load_image
    from tessera.os.errors import TesseraError
    from tessera.os.trace import HOST, Trace, estimate_pairs, link_loads, record, ring_stops
    from tessera.os.trace_draw import scene, svg
    from tessera.os.trace_png import png

    if args.output.suffix.lower() not in FORMATS:
        raise TesseraError(f"{args.output}: the drawing is written as SVG or PNG: name it .svg or .png")
    if args.seconds <= 0 or args.interval <= 0:
        raise TesseraError("--seconds and --interval must be positive")
    port = session.find_session(args.target)
    if port is not None:
        answer = session.request(port, {"op": "trace", "seconds": args.seconds, "interval": args.interval},
                                 timeout=args.seconds + session.REQUEST_TIMEOUT_S)
        trace = Trace.from_json(answer["trace"])
    else:
        image = load_image(args.image)
        services = {tile.tile: tile.service for tile in image.tiles} if image else {}
        permissions = {tile.tile: tile.permissions for tile in image.tiles} if image else {}
        with chip_on(args.target) as chip:
            trace = record(chip, args.seconds, services, permissions, args.interval)
    drawing = scene(trace)
    if args.output.suffix.lower() == ".svg":
        args.output.write_text(svg(drawing), encoding="utf-8")
    else:
        args.output.write_bytes(png(drawing))
    pairs = estimate_pairs(trace)
    observed = sum(count for (source, dest), count in pairs.items() if HOST in (source, dest))
    loads = link_loads(trace, pairs)
    stops = ring_stops(trace)
    busiest = max(range(len(loads)), key=loads.__getitem__)
    print(f"{args.output}: {trace.seconds:.2f} s, {round(sum(pairs.values()))} messages ({round(observed)} to or "
          f"from the host observed, the rest derived); busiest link {trace.label(stops[busiest])} -> "
          f"{trace.label(stops[(busiest + 1) % len(stops)])}: {round(loads[busiest])}")
    return 0
