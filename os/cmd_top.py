"""`tessera top`: `tessera ps`, live: the table again every `--interval` seconds with each service's message rates
since the previous frame. On a terminal each frame replaces the last (ANSI home + clear, no curses); otherwise
(a pipe, a log) frames follow each other. `--iterations N` stops after N frames."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

#: The message counters are 16 bits wide and wrap (docs/protocol.md, STATUS).
COUNTER_MODULUS = 1 << 16
CLEAR = "\x1b[H\x1b[2J"


def register(subparsers: argparse._SubParsersAction) -> None:
    from tessera.os.commands import add_image, add_target

    parser = subparsers.add_parser("top", help="ps, refreshed live, with message rates")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between frames (default 1)")
    parser.add_argument("--iterations", type=int, help="stop after this many frames (default: until Ctrl-C)")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def rate(now: object, before: object, seconds: float, restarted: bool) -> str:
    """Messages per second between two readings of a wrapping counter; a restart sets the counter to 0."""
    if not isinstance(now, int) or not isinstance(before, int) or seconds <= 0:
        return "-"
    delta = now if restarted else (now - before) % COUNTER_MODULUS
    return f"{delta / seconds:.1f}"


def frame(rows: Sequence[dict[str, object]], previous: Sequence[dict[str, object]] | None, seconds: float,
          title: str) -> str:
    """`title`, then the ps table with two more columns: messages in/out per second since `previous`."""
    from tessera.os.commands import format_ps

    before = {row["tile"]: row for row in previous or ()}
    table = format_ps(rows).splitlines()
    lines = [title, f"{table[0]}  {'in/s':>8}  {'out/s':>8}"]
    for row, text in zip(rows, table[1:]):
        old = before.get(row["tile"])
        restarted = old is not None and old["restarts"] != row["restarts"]
        rates = [rate(row[key], old[key], seconds, restarted) if old else "-" for key in ("in", "out")]
        lines.append(f"{text}  {rates[0]:>8}  {rates[1]:>8}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from tessera.os import session
    from tessera.os.commands import chip_on, direct_ps, load_image
    from tessera.os.errors import TesseraError

    if args.interval <= 0 or (args.iterations is not None and args.iterations < 1):
        raise TesseraError("--interval must be positive and --iterations at least 1")
    port = session.find_session(args.target)
    with ExitStack() as stack:
        if port is not None:
            def read() -> list[dict[str, object]]:
                return session.request(port, {"op": "ps"})["rows"]
        else:
            image = load_image(args.image)
            chip = stack.enter_context(chip_on(args.target))

            def read() -> list[dict[str, object]]:
                return direct_ps(chip, image)

        live = sys.stdout.isatty()
        previous, taken = None, time.monotonic()
        count = 0
        try:
            while args.iterations is None or count < args.iterations:
                if count:
                    time.sleep(max(0.0, taken + args.interval - time.monotonic()))
                rows, now = read(), time.monotonic()
                title = f"tessera top  {args.target}  {time.strftime('%H:%M:%S')}  every {args.interval:g} s"
                print((CLEAR if live else ("\n" if count else "")) + frame(rows, previous, now - taken, title),
                      flush=True)
                previous, taken = rows, now
                count += 1
        except KeyboardInterrupt:  # the way to leave an endless top
            pass
    return 0
