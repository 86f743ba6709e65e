"""`python -m tessera.boards.flash --board icebreaker`: program a board with the bitstream `make build` wrote.

Programmer: `$ICEPROG` (default `iceprog`, Debian fpga-icestorm) when it is on PATH, else openFPGALoader; pick one
with `--programmer`. iceprog writes the SPI flash (iCEBreaker, iCEstick, UPduino) or, with `-S`, the FPGA's SRAM
(HX8K breakout, as amaranth-boards does). Exit status: 0 = programmed; 3 = no board attached (one line says so);
2 = no bitstream or no programmer; 1 = the programmer failed for another reason (its output is shown).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tessera.boards.board import Board
from tessera.boards.build import BOARD_BUILD_ROOT, BOARDS, TOP_NAME

EXIT_FAILED, EXIT_SETUP, EXIT_NO_BOARD = 1, 2, 3

#: What the programmers print when no FTDI device is on the USB bus (iceprog; openFPGALoader's variants).
NO_DEVICE_MARKERS = (
    "Can't find iCE FTDI USB device",
    "unable to open ftdi device",
    "no device found",
    "No cable or board",
    "device not found",
)


class FlashError(RuntimeError):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def default_bitstream(board: Board) -> Path:
    return BOARD_BUILD_ROOT / board.name / f"{TOP_NAME}.bin"


def programmer_command(board: Board, bitstream: Path, programmer: str) -> list[str]:
    """The command line that programs `bitstream` onto `board` with `programmer` ("iceprog" or "openfpgaloader")."""
    if programmer == "iceprog":
        return [os.environ.get("ICEPROG", "iceprog"), *board.iceprog_args, str(bitstream)]
    if programmer == "openfpgaloader":
        # openFPGALoader loads SRAM by default; -f writes the flash, like iceprog without -S.
        flash = [] if "-S" in board.iceprog_args else ["-f"]
        return ["openFPGALoader", "-b", board.openfpgaloader_board, *flash, str(bitstream)]
    raise ValueError(f"unknown programmer {programmer!r}: expected iceprog or openfpgaloader")


def pick_programmer() -> str | None:
    """iceprog if it is on PATH, else openFPGALoader if it is, else None."""
    if shutil.which(os.environ.get("ICEPROG", "iceprog")):
        return "iceprog"
    if shutil.which("openFPGALoader"):
        return "openfpgaloader"
    return None


def flash(board: Board, bitstream: Path, programmer: str) -> str:
    """Program the board; return the programmer's output. Raises FlashError (with the exit code to use)."""
    if not bitstream.is_file():
        raise FlashError(f"no bitstream at {bitstream}: run `make build BOARD={board.name}` first", EXIT_SETUP)
    command = programmer_command(board, bitstream, programmer)
    try:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError:
        missing = f"{command[0]} is not installed (Debian: fpga-icestorm or openfpgaloader)"
        raise FlashError(missing, EXIT_SETUP) from None
    output = completed.stdout or ""
    if completed.returncode != 0:
        if any(marker.lower() in output.lower() for marker in NO_DEVICE_MARKERS):
            raise FlashError(f"no {board.name} attached: {command[0]} found no FTDI programmer on USB", EXIT_NO_BOARD)
        raise FlashError(f"{' '.join(command)} failed (exit {completed.returncode}):\n{output.strip()}", EXIT_FAILED)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", choices=sorted(BOARDS), default="icebreaker")
    parser.add_argument("--bitstream", type=Path, help="default: build/boards/<board>/tessera.bin")
    parser.add_argument("--programmer", choices=("iceprog", "openfpgaloader"), help="default: whichever is installed")
    args = parser.parse_args(argv)
    board = BOARDS[args.board]
    programmer = args.programmer or pick_programmer()
    if programmer is None:
        print("error: neither iceprog nor openFPGALoader is installed (Debian: fpga-icestorm)", file=sys.stderr)
        return EXIT_SETUP
    try:
        output = flash(board, args.bitstream or default_bitstream(board), programmer)
    except FlashError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(output.strip())
    print(f"{board.name} programmed; host UART: {board.uart_wiring}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
