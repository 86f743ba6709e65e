"""`tessera logs IMAGE`: the events, logs and messages `tessera run` recorded next to the image."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("logs", help="show what `tessera run` logged for an image")
    parser.add_argument("image", type=Path, help="the runtime image (.tsi) that runs or ran")
    parser.add_argument("-n", "--lines", type=int, default=0, help="only the last N lines")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time

    from tessera.os.errors import TesseraError
    from tessera.os.runner import event_log_path

    path = event_log_path(args.image)
    try:
        stream = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise TesseraError(f"{path}: no log yet (start the image with `tessera run {args.image}`)") from None
    with stream:
        lines = stream.readlines()
        for line in lines[-args.lines:] if args.lines > 0 else lines:
            print(line, end="")
        while args.follow:
            line = stream.readline()
            if line:
                print(line, end="", flush=True)
            else:
                time.sleep(0.2)
    return 0
