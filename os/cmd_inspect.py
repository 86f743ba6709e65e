"""`tessera inspect app.tsi [--manifest]`: print a runtime image readably (or the manifest it was built from)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    command = subparsers.add_parser("inspect", help="show what a runtime image holds", description=__doc__)
    command.add_argument("image", type=Path, help="the runtime image (.tsi)")
    command.add_argument("--manifest", action="store_true", help="print the manifest text stored in the image")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tessera.os.image import describe, read_image

    image = read_image(args.image)
    print(image.manifest_text if args.manifest else describe(image), end="")
    return 0
