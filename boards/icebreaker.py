"""iCEBreaker (iCE40UP5K-SG48): 12 MHz on pin 35 (the PLL pad), UART through the FT2232H's second channel.

amaranth-boards' ICEBreakerPlatform already declares the clock, both LEDs, the user button and the UART; the
board needs nothing more. The PLL input is the pad itself (SB_PLL40_PAD), so the clock pin must not get a global
buffer of its own: the board top requests it raw.
"""

from __future__ import annotations

from amaranth_boards.icebreaker import ICEBreakerPlatform

from tessera.boards.board import Board, ClockSource

BOARD = Board(
    name="icebreaker",
    platform=ICEBreakerPlatform,
    device="up5k",
    clock_source=ClockSource.PLL_PAD,
    clock_resource="clk12",
    reference_hz=12e6,
    # What fits the UP5K today and closes timing (make bench-fit; README): four bit-core tiles (~930 logic cells
    # each beside ~1270 for the host link, I/O node and chip top) at 24 MHz, with 27.0 MHz reached at seed 1 on the
    # iCEBreaker (docs/boards.md, "Build"). Their memories are in the UP5K's SPRAM, 32 KiB each, two tiles to a
    # pair of SPRAMs (hw/spram_bank.py): 1 KiB of block RAM each would fit as well, but leave services no room.
    default_mhz=24.0,
    default_tiles=4,
    tile_memory="spram",
    iceprog_args=(),
    openfpgaloader_board="ice40_generic",
    uart_wiring="USB: the FT2232H's second channel (e.g. /dev/ttyUSB1); FPGA rx = pin 6, tx = pin 9",
)
