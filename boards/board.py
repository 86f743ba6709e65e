"""What the build, flash and benchmark tools need to know about one iCE40 board.

Each board module (icebreaker, hx8k, icestick, upduino) defines a `BOARD` of this type: the amaranth-boards
platform (extended only where the board needs it), where the PLL gets its reference clock, the default target
frequency, and how the board is programmed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.vendor import LatticeICE40Platform

from tessera.hw.spram_bank import spram_tile_bytes


class ClockSource(enum.Enum):
    #: The 12 MHz oscillator on the PLL's dedicated pad: SB_PLL40_PAD takes it straight from the pin.
    PLL_PAD = "pad"
    #: The 12 MHz oscillator on an ordinary global-buffer pin: its SB_GB_IO output feeds SB_PLL40_CORE.
    PLL_CORE = "core"
    #: The UP5K's internal 48 MHz oscillator divided to 12 MHz (SB_HFOSC) feeds SB_PLL40_CORE.
    HFOSC = "hfosc"


@dataclass(frozen=True)
class Board:
    name: str
    platform: type[LatticeICE40Platform]
    #: Device family as the benchmarks name it: "up5k", "hx8k" or "hx1k".
    device: str
    clock_source: ClockSource
    #: Name of the platform's clock pin resource (PLL_PAD and PLL_CORE boards).
    clock_resource: str
    reference_hz: float
    #: Default sync clock (the PLL output) for `make build`.
    default_mhz: float
    #: Default tile count for `make build`.
    default_tiles: int
    #: iceprog's extra arguments: () writes the SPI flash, ("-S",) loads the FPGA's SRAM directly.
    iceprog_args: tuple[str, ...]
    #: openFPGALoader's `-b` board name.
    openfpgaloader_board: str
    #: How the host reaches the UART (for the one-line hints and docs/boards.md).
    uart_wiring: str
    #: The chip's `separate_staging`: True = two block RAMs per mailbox (queue, staged message), False = one, for a few
    #: logic cells more per node (hw/mailbox.py), on a board whose tile count block RAM limits.
    separate_staging: bool = True
    #: Where the tiles' memories are by default: "block_ram" (one per tile) or "spram" (UP5K only: slices of its
    #: single-port RAM, hw/spram_bank.py).
    tile_memory: str = "block_ram"

    def default_mem_bytes(self, tiles: int, tile_memory: str) -> int:
        """Each tile's memory when the build does not say: 1 KiB of block RAM, or as much of the SPRAM as there is."""
        return spram_tile_bytes(tiles) if tile_memory == "spram" and tiles else 1024
