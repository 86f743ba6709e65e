"""`tessera restart NAME`: reload one service's tile image and start it again (through the session, or with
`--image` over the link: the same `Runner.restart_service`, so a persistent service gets its state back)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tessera.os.chip import Chip
    from tessera.os.image import RuntimeImage


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_service_control

    add_service_control(subparsers, "restart", "reload and restart one service", run)


def run(args: argparse.Namespace) -> int:
    from tessera.os.commands import control_service

    def restart(chip: Chip, tile: int, image: RuntimeImage | None) -> None:
        import io

        from tessera.os.runner import Runner

        service = next((t.service for t in image.tiles if t.tile == tile), None) if image is not None else None
        if image is None or service is None:  # no image for this tile: only a reset and run is possible
            chip.halt(tile)
            chip.reset(tile)
            chip.run(tile)
            return
        runner = Runner(chip, image, image_path=args.image, out=io.StringIO(), progress=io.StringIO())
        try:
            runner.restart_service(service)
        finally:
            runner.close()

    control_service(args, "restart", restart)
    print(f"restarted {args.name}")
    return 0
