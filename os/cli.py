"""The `tessera` command: a thin dispatcher over subcommand modules.

Each subcommand lives in its own module (`tessera.os.cmd_<name>`) exposing `register(subparsers)`, which adds its
argparse parser and sets `run=function(args) -> int` as the parser's default. Adding a command means adding its
module to COMMANDS. Command modules import their heavy dependencies inside `run`, so `tessera --help` stays fast.

Errors the user caused (`TesseraError`: a bad manifest, a corrupt image, ...) print as one line on stderr with exit
status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tessera.os.errors import TesseraError

#: Subcommand modules, in the order `tessera --help` lists them.
COMMANDS = (
    "tessera.os.cmd_build",
    "tessera.os.cmd_inspect",
    "tessera.os.cmd_run",
    "tessera.os.cmd_send",
    "tessera.os.cmd_call",
    "tessera.os.cmd_ps",
    "tessera.os.cmd_identify",
    "tessera.os.cmd_listen",
    "tessera.os.cmd_logs",
    "tessera.os.cmd_stop",
    "tessera.os.cmd_restart",
    "tessera.os.cmd_reload",
    "tessera.os.cmd_top",
    "tessera.os.cmd_trace",
    "tessera.os.cmd_sim",
    "tessera.os.cmd_io",
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tessera", description="Build, load and supervise Tessera many-tile systems.")
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(subparsers)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args, extra = top.parse_known_args(argv)
    if extra and not getattr(args, "forward_options", False):
        top.error(f"unrecognized arguments: {' '.join(extra)}")
    args.forwarded = extra
    try:
        return int(args.run(args))
    except TesseraError as error:
        print(f"tessera: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tessera: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
