"""`tessera reload IMAGE SERVICE`: replace one service's code on the running system with its build in IMAGE, at a
message boundary, handing its state over; senders are held back by the chip meanwhile and no message is lost
(tessera.os.reload). Needs the `tessera run` session of the target: only it knows which image runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_target
    from tessera.os.reload import BOUNDARY_TIMEOUT_S

    parser = subparsers.add_parser("reload", help="replace one service's code on the running system, keeping its "
                                                  "state and every message to it")
    parser.add_argument("image", type=Path, help="the new build (.tsi) of the running system")
    parser.add_argument("name", help="the service to replace")
    parser.add_argument("--timeout", type=float, default=BOUNDARY_TIMEOUT_S,
                        help=f"seconds the service may take to finish its current message (default "
                             f"{BOUNDARY_TIMEOUT_S:g})")
    add_target(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os import session
    from tessera.os.errors import TesseraError
    from tessera.os.image import read_image

    read_image(args.image)  # a missing or corrupt file is this command's error, not the session's
    port = session.find_session(args.target)
    if port is None:
        raise TesseraError(f"no `tessera run` session serves {args.target}: reload replaces code in the system it "
                           f"runs (start it with `tessera run IMAGE --target {args.target}`)")
    answer = session.request(port, {"op": "reload", "name": args.name, "image": str(args.image.resolve()),
                                    "timeout": args.timeout}, timeout=args.timeout + session.REQUEST_TIMEOUT_S)
    print(f"reloaded {args.name}: {answer['summary']}")
    return 0
