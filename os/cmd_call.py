"""`tessera call NAME WORDS...`: send a message to a service and print its reply (or fail after --timeout)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_message, add_target

    parser = subparsers.add_parser("call", help="send a message to a service and print the reply")
    add_message(parser)
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the reply (default 2)")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, load_image, parse_words, resolve
    from tessera.os.errors import TesseraError
    from tessera.os.manifest import IO_NAMES

    if args.name in IO_NAMES:  # before anything is sent: a call to the I/O node could only time out
        raise TesseraError(f"{args.name!r} is a service of the I/O node, which never replies: "
                           f"use `tessera send {args.name} ...`")
    words = parse_words(args.words)
    port = session.find_session(args.target)
    if port is not None:
        answer = session.request(port, {"op": "call", "name": args.name, "tag": args.tag, "words": words,
                                        "timeout": args.timeout}, timeout=args.timeout + 10)
        reply = answer["words"]
    else:
        image = load_image(args.image)
        with chip_on(args.target) as chip:
            tile = resolve(args.name, image, chip)
            chip.poll(0)  # what was waiting before the call is not its reply
            chip.send(tile, args.tag, words)
            message = chip.take(lambda m: m.source == tile and not m.is_log and not m.is_down, args.timeout)
            if message is None:
                raise TesseraError(f"no reply from {args.name} within {args.timeout:g} s")
            reply = list(message.words)
    print(" ".join(str(word) for word in reply))
    return 0
