"""`tessera sim [--tiles N ...]`: start a virtual board (the simulated chip) serving the host link on TCP and a pty.

All options belong to the virtual board (`tessera.sim.virtual_board`); this module only forwards them, so the
board's own `--help` is the reference.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim", help="start a virtual board (the chip under Verilator or Icarus)", add_help=False
    )
    # Every option is the board's: the dispatcher forwards what it does not know as `args.forwarded`.
    parser.set_defaults(run=run, forward_options=True)


def run(args: argparse.Namespace) -> int:
    from tessera.sim.virtual_board import main

    return main(args.forwarded, prog="tessera sim")
