"""`tessera stop NAME`: halt one service's tile (its supervisor does not restart it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_target

    parser = subparsers.add_parser("stop", help="stop one service")
    parser.add_argument("name", help="service name (or tile number)")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, load_image, resolve

    port = session.find_session(args.target)
    if port is not None:
        session.request(port, {"op": "stop", "name": args.name})
    else:
        image = load_image(args.image)
        with chip_on(args.target) as chip:
            chip.halt(resolve(args.name, image, chip))
    print(f"stopped {args.name}")
    return 0
