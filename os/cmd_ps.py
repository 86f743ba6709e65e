"""`tessera ps`: tiles, services, state, restarts, messages in and out."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_target

    parser = subparsers.add_parser("ps", help="list tiles and services with state, restarts and message counts")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, direct_ps, format_ps, load_image

    port = session.find_session(args.target)
    if port is not None:
        rows = session.request(port, {"op": "ps"})["rows"]
    else:
        image = load_image(args.image)
        with chip_on(args.target) as chip:
            rows = direct_ps(chip, image)
    print(format_ps(rows))
    return 0
