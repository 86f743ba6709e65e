"""`tessera build app.toml [-o app.tsi]`: check a manifest, compile its services, write the runtime image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    command = subparsers.add_parser("build", help="compile a manifest's services into a runtime image (.tsi)",
                                    description=__doc__)
    command.add_argument("manifest", type=Path, help="the system manifest (TOML)")
    command.add_argument("-o", "--output", type=Path,
                         help="image file to write (default: the manifest's name with .tsi, next to it)")
    command.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: compiling pulls in the assembler and the service compiler, which `tessera --help` need not.
    from tessera.os.build import build_image
    from tessera.os.image import encode
    from tessera.os.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    image = build_image(manifest)
    output = args.output or args.manifest.with_suffix(".tsi")
    data = encode(image)
    output.write_bytes(data)
    used = sum(len(tile.memory) for tile in image.tiles)
    print(f"{output}: {len(image.tiles)} services on {image.chip.tiles} tiles of {image.chip.mem_bytes} bytes "
          f"({used} bytes of tile memory), image {len(data)} bytes")
    return 0
