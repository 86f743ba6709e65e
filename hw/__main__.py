"""`python -m tessera.hw`: write the chip's Verilog and print a short summary of its configuration."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from amaranth.back import verilog

from tessera.hw.tile import CORES
from tessera.hw.chip import LINKS, TesseraChip


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tessera.hw", description=__doc__)
    parser.add_argument("--tiles", type=int, default=8)
    parser.add_argument("--mem-bytes", type=int, default=4096, help="tile memory, a power of two >= 1024")
    parser.add_argument("--mailbox-depth", type=int, default=8)
    parser.add_argument("--link", choices=LINKS, default="uart")
    parser.add_argument("--clock-hz", type=int, default=12_000_000)
    parser.add_argument("--baud", type=int, default=115_200)
    parser.add_argument("--max-words", type=int, default=32, help="words per WRITE_MEM/READ_MEM frame")
    parser.add_argument("--core", choices=CORES, default="parallel", help="tile core (docs/core.md)")
    parser.add_argument("--leds", type=int, default=0, help="LEDs on the I/O node (0..8; docs/boards.md)")
    parser.add_argument("--buttons", type=int, default=0, help="buttons on the I/O node (0..8)")
    parser.add_argument("-o", "--output", type=Path, default=Path("tessera_chip.v"), help="Verilog file to write")
    parser.add_argument("--name", default="tessera_chip", help="Verilog module name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    try:
        chip = TesseraChip(
            tiles=args.tiles,
            mem_bytes=args.mem_bytes,
            mailbox_depth=args.mailbox_depth,
            link=args.link,
            clock_hz=args.clock_hz,
            baud=args.baud,
            max_words=args.max_words,
            core=args.core,
            leds=args.leds,
            buttons=args.buttons,
        )
    except ValueError as error:
        print(f"python -m tessera.hw: {error}", file=sys.stderr)
        return 2
    summary = chip.summary()
    args.output.write_text(verilog.convert(chip, name=args.name))
    print(summary)
    print(f"verilog: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
