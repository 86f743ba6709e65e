"""`tessera stop NAME`: halt one service's tile (its supervisor does not restart it)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_service_control

    add_service_control(subparsers, "stop", "stop one service", run)


def run(args: argparse.Namespace) -> int:
    from tessera.os.commands import control_service

    control_service(args, "stop", lambda chip, tile, _image: chip.halt(tile))
    print(f"stopped {args.name}")
    return 0
