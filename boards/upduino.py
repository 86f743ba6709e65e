"""UPduino v3.0/v3.1 (iCE40UP5K-SG48): internal oscillator, UART on header pins through a USB-serial adapter.

The UPduino's FT232H only programs the SPI flash; it has no UART channel to the FPGA. Tessera's host link is
therefore on two header pins (docs/boards.md has the wiring):
- FPGA rx = pin 28 (JP5, last pin): connect the adapter's TXD,
- FPGA tx = pin 38 (JP5, next to it): connect the adapter's RXD,
- adapter GND to a GND pin; 3.3 V logic levels only.
The 12 MHz oscillator reaches pin 20 only with the OSC jumper soldered (and then shares it with the flash), so
the clock comes from the UP5K's internal 48 MHz oscillator divided to 12 MHz (SB_HFOSC, +/-10 % accuracy) into
SB_PLL40_CORE. The RGB LED is three active-low LEDs; the board has no button.
"""

from __future__ import annotations

from amaranth.build import Attrs
from amaranth_boards.resources import LEDResources, UARTResource
from amaranth_boards.upduino_v3 import UpduinoV3Platform

from tessera.boards.board import Board, ClockSource

#: Header pins chosen for the host UART (FPGA pin numbers, as printed on the UPduino's silkscreen).
UART_RX_PIN = "28"
UART_TX_PIN = "38"


class UpduinoV3TesseraPlatform(UpduinoV3Platform):
    """UpduinoV3Platform plus the header UART and the RGB LED as three plain LEDs (red, green, blue)."""

    resources = [
        *UpduinoV3Platform.resources,
        UARTResource(0, rx=UART_RX_PIN, tx=UART_TX_PIN, attrs=Attrs(IO_STANDARD="SB_LVCMOS", PULLUP=1)),
        *LEDResources(pins="41 39 40", invert=True, attrs=Attrs(IO_STANDARD="SB_LVCMOS")),
    ]


BOARD = Board(
    name="upduino",
    platform=UpduinoV3TesseraPlatform,
    device="up5k",
    clock_source=ClockSource.HFOSC,
    clock_resource="",
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
    uart_wiring=(
        f"a 3.3 V USB-serial adapter on the header: adapter TXD -> pin {UART_RX_PIN}, "
        f"adapter RXD <- pin {UART_TX_PIN}, GND -> GND"
    ),
)

__all__ = ["BOARD", "UpduinoV3TesseraPlatform"]
