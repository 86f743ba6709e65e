"""`tessera listen`: print the messages the network delivers to the host, when no `tessera run` session does.

A bring-up tool: DOWN reports, a service's messages to `host`, the I/O node's button events after
`tessera send button 0 --tag 2` made the host the buttons' subscriber.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_target

    parser = subparsers.add_parser("listen", help="print the messages sent to the host (no session needed)")
    parser.add_argument("--seconds", type=float, default=10.0, help="stop after this long (default 10)")
    parser.add_argument("--count", type=int, help="stop once this many have arrived (all that arrived are printed)")
    add_target(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on
    from tessera.os.errors import TesseraError

    if args.seconds <= 0 or (args.count is not None and args.count < 1):
        raise TesseraError("--seconds must be above 0 and --count at least 1")
    if session.find_session(args.target) is not None:
        raise TesseraError(f"`tessera run` serves {args.target} and prints the host's messages itself")
    heard = 0
    with chip_on(args.target) as chip:
        deadline = chip.clock() + args.seconds
        while (args.count is None or heard < args.count) and (left := deadline - chip.clock()) > 0:
            for message in chip.poll(left):
                print(f"node {message.source} tag 0x{message.tag:04x}: {' '.join(map(str, message.words))}",
                      flush=True)
                heard += 1
    return 0
