"""`tessera io show | press N | buttons MASK`: play the virtual board's buttons and read its LEDs.

All options belong to `tessera.sim.board_io`; this module only forwards them, so its `--help` is the reference.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("io", help="press the virtual board's buttons, show its LEDs", add_help=False)
    parser.set_defaults(run=run, forward_options=True)


def run(args: argparse.Namespace) -> int:
    from tessera.sim.board_io import main

    return main(args.forwarded, prog="tessera io")
