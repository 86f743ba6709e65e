"""`tessera run IMAGE`: load the image onto the chip, supervise it and stream its output until Ctrl-C."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_target

    parser = subparsers.add_parser("run", help="load, start and supervise an image; stream logs until Ctrl-C")
    parser.add_argument("image", type=Path, help="the runtime image (.tsi) from `tessera build`")
    add_target(parser)
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os.commands import chip_on
    from tessera.os.image import read_image
    from tessera.os.runner import Runner
    from tessera.os.session import SessionServer

    image = read_image(args.image)
    with chip_on(args.target) as chip:
        runner = Runner(chip, image, image_path=args.image)
        runner.boot()
        server = SessionServer(runner, args.target)
        try:
            status = runner.serve(duration=args.duration, idle=server.idle)
        finally:
            server.close()
            runner.shutdown()
        return status
