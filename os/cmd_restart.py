"""`tessera restart NAME`: reload one service's tile image and start it again."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_target

    parser = subparsers.add_parser("restart", help="reload and restart one service")
    parser.add_argument("name", help="service name (or tile number)")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, load_image, resolve

    port = session.find_session(args.target)
    if port is not None:
        session.request(port, {"op": "restart", "name": args.name})
    else:
        image = load_image(args.image)
        with chip_on(args.target) as chip:
            tile = resolve(args.name, image, chip)
            chip.halt(tile)
            chip.reset(tile)
            if image is not None:  # without the image only a reset and run is possible
                chip.load(tile, image.tiles[[t.tile for t in image.tiles].index(tile)].memory)
            chip.run(tile)
    print(f"restarted {args.name}")
    return 0
