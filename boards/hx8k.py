"""iCE40-HX8K Breakout Board (iCE40HX8K-CT256): 12 MHz on J3 (a global-buffer pin feeding SB_PLL40_CORE),
UART on the FT2232H's channel B.

amaranth-boards' ICE40HX8KBEVNPlatform declares the clock, the eight LEDs D2..D9 and the UART. The board has no
user button. By default its jumpers route the FT2232H to the SPI flash; iceprog `-S` loads the FPGA's SRAM
instead (jumpers J6 2-4 and 1-3 fitted, J7 off), which is what amaranth-boards does too.
"""

from __future__ import annotations

from amaranth_boards.ice40_hx8k_b_evn import ICE40HX8KBEVNPlatform

from tessera.boards.board import Board, ClockSource

BOARD = Board(
    name="hx8k",
    platform=ICE40HX8KBEVNPlatform,
    device="hx8k",
    clock_source=ClockSource.PLL_CORE,
    clock_resource="clk12",
    reference_hz=12e6,
    # What fits (make bench-fit; README): six bit-core tiles at 66.5 MHz (6989 of 7680 logic cells, 29 of 32 block
    # RAMs). Block RAM limited this board first: with two EBR per mailbox six tiles needed 36 of the 32, so its
    # mailboxes keep the staged message in the queue's EBR (`separate_staging=False`, ~28 logic cells per node).
    # Seven tiles now run out of logic cells (7953).
    default_mhz=24.0,
    default_tiles=6,
    iceprog_args=("-S",),
    openfpgaloader_board="ice40_generic",
    uart_wiring="USB: the FT2232H's channel B (e.g. /dev/ttyUSB1); FPGA rx = B10, tx = B12",
    separate_staging=False,
)
