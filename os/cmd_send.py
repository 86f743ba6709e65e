"""`tessera send NAME WORDS...`: send one message to a service (a tile's, or the I/O node's `led`) as the host."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_message, add_target

    parser = subparsers.add_parser("send", help="send a message to a service")
    add_message(parser)
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, io_service_node, load_image, parse_words, resolve

    words = parse_words(args.words)
    port = session.find_session(args.target)
    if port is not None:
        session.request(port, {"op": "send", "name": args.name, "tag": args.tag, "words": words})
    else:
        image = load_image(args.image)
        with chip_on(args.target) as chip:
            node = io_service_node(args.name, chip)
            chip.send(resolve(args.name, image, chip) if node is None else node, args.tag, words)
    print(f"sent to {args.name}: {' '.join(map(str, words))}")
    return 0
