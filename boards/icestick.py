"""iCEstick (iCE40HX1K-TQ144): 12 MHz on pin 21 (a global-buffer pin feeding SB_PLL40_CORE),
UART on the FT2232H's channel B.

amaranth-boards' ICEStickPlatform declares the clock, the five LEDs and the UART; the board has no button.
An HX1K (1280 logic cells, 16 EBR) holds the host link and the I/O node but not a tile as well (one tile: 2159
cells), so the board's chip has no tiles: the host reaches its LEDs as the `led` service (docs/boards.md).
"""

from __future__ import annotations

from amaranth_boards.icestick import ICEStickPlatform

from tessera.boards.board import Board, ClockSource

BOARD = Board(
    name="icestick",
    platform=ICEStickPlatform,
    device="hx1k",
    clock_source=ClockSource.PLL_CORE,
    clock_resource="clk12",
    reference_hz=12e6,
    default_mhz=24.0,
    default_tiles=0,
    iceprog_args=(),
    openfpgaloader_board="ice40_generic",
    uart_wiring="USB: the FT2232H's channel B (e.g. /dev/ttyUSB1); FPGA rx = pin 9, tx = pin 8",
)
