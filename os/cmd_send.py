"""`tessera send NAME WORDS...`: send one message to a service as the host."""

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
    from tessera.os.commands import chip_on, load_image, parse_words, resolve

    words = parse_words(args.words)
    port = session.find_session(args.target)
    if port is not None:
        session.request(port, {"op": "send", "name": args.name, "tag": args.tag, "words": words})
    else:
        image = load_image(args.image)
        with chip_on(args.target) as chip:
            chip.send(resolve(args.name, image, chip), args.tag, words)
    print(f"sent to {args.name}: {' '.join(map(str, words))}")
    return 0
