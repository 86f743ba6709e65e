"""`tessera identify`: what the chip at a target is (its IDENTIFY reply), the first check after flashing a board."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_target

    parser = subparsers.add_parser("identify", help="show the chip's tiles, memory, I/O node, features and clock")
    add_target(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.commands import chip_on, describe_chip
    from tessera.os.protocol import ChipInfo

    port = session.find_session(args.target)
    if port is not None:
        info = ChipInfo.from_bytes(bytes.fromhex(session.request(port, {"op": "identify"})["info"]))
    else:
        with chip_on(args.target) as chip:
            info = chip.info
    print(describe_chip(info, args.target))
    return 0
