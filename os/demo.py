"""`python -m tessera.os.demo` (`make demo`): a short tour of the demo systems in os/demos/ on a chip.

Builds each demo's image into `--out` (default build/demo), opens the target once (default `sim`: the virtual
board, started here and stopped at exit unless one is already running; `--board NAME`: the virtual board of
that board's chip, as `tessera sim --board NAME` starts it), then runs, in order: ping-pong,
pipeline, parallel Mandelbrot, crash and recover, persistent key-value store, printing what each does. Exits 0
when every demo got the answers it expects, 1 (with the reason) otherwise. Demo 6 (board I/O) is not in the tour:
it needs a chip with LEDs and buttons and someone to press them (tests/test_demos.py plays them on the virtual
board; os/demos/README.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tessera.os.chip import Chip
from tessera.os.commands import DEFAULT_TARGET
from tessera.os.demo_host import demo_tiles, reset_chip
from tessera.os.demo_runs import run_crash, run_kvstore, run_mandelbrot, run_pingpong, run_pipeline
from tessera.os.errors import TesseraError
from tessera.os.link import TARGET_SYNTAX, Link, LinkError, is_sim_target, open_link


#: (name, title, run) in tour order.
TOUR: tuple[tuple[str, str, Callable[..., object]], ...] = (
    ("pingpong", "ping-pong: two services bounce a counter", run_pingpong),
    ("pipeline", "pipeline: split -> count -> top-k over three tiles", run_pipeline),
    ("mandelbrot", "parallel Mandelbrot: up to 7 workers and a collector", run_mandelbrot),
    ("crash", "crash and recover: a worker faults under its supervisor", run_crash),
    ("kvstore", "persistent key-value store: across a restart and a chip reset", run_kvstore),
)
NAMES = tuple(name for name, _, _ in TOUR)


def say(text: str) -> None:
    print(text, flush=True)


def tour(link: Link, folder: Path, names: Sequence[str] = NAMES) -> float:
    """Run the named demos on the chip behind `link`; returns the seconds they took."""
    chip = Chip(link)
    say(f"chip at {link.target}: {chip.info.tile_count} tiles of {chip.info.mem_bytes} bytes, mailbox depth "
        f"{chip.info.mailbox_depth}")
    started = time.monotonic()
    for number, (name, title, run) in enumerate(TOUR, 1):
        if name not in names:
            continue
        say(f"\n== {number}. {title} (os/demos/{name}) ==")
        needed = demo_tiles(name)
        if needed > chip.info.tile_count:
            say(f"skipped: it needs {needed} tiles, the chip has {chip.info.tile_count}")
            continue
        begun = time.monotonic()
        if name == "kvstore":
            holder = [chip]

            def reset() -> Chip:
                holder[0] = reset_chip(link)
                return holder[0]

            run_kvstore(chip, folder, say, reset=reset)
            chip = holder[0]
        else:
            run(chip, folder, say)
        say(f"({time.monotonic() - begun:.1f} s)")
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tessera.os.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=DEFAULT_TARGET, help=f"the chip: {TARGET_SYNTAX} (default: sim)")
    parser.add_argument("--out", type=Path, default=Path("build/demo"), help="where images, the PNG and the "
                                                                             "key-value store's state go")
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES), help="run only these demos")
    parser.add_argument("--board", help="simulate the chip `make build BOARD=...` builds for this board (its "
                        "tiles, tile memory, mailboxes and clock) instead of the default chip; sim targets only")
    args = parser.parse_args(argv)
    chip = None
    if args.board is not None:
        if not is_sim_target(args.target):
            parser.error(f"--board simulates a board's chip: it needs a sim target, not {args.target!r} (a board "
                         "target is the flashed chip itself)")
        from tessera.sim.virtual_board import BOARD_CHIP, ChipSpec

        chip = ChipSpec(BOARD_CHIP, {"board": args.board})
    opened = time.monotonic()
    try:
        say(f"opening {args.target} (the first start of the virtual board compiles the chip; later starts reuse it)")
        with open_link(args.target, chip) as link:
            say(f"link up in {time.monotonic() - opened:.1f} s")
            seconds = tour(link, args.out, args.only)
    except (TesseraError, LinkError) as error:
        print(f"demo: error: {error}", file=sys.stderr)
        return 1
    say(f"\nall demos ran in {seconds:.1f} s ({time.monotonic() - opened:.1f} s with the link start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
