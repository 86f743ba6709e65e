"""The board-level top: the PLL, the reset, the UART and LED/button pins around a chip top.

Contract for the chip (hw/chip.py's Chip): a wiring.Component with `uart_rx: In(1)` and
`uart_tx: Out(1)` (idle high), clocked by the "sync" domain; optionally `leds: Out(n)` and `buttons: In(n)`
(the I/O node's pins, see hw/io_node.py), wired to as many of the board's LEDs/buttons as both sides have.
`io_pins(board)` says how many the board has, which is what the board builds ask the chip for.

The sync clock is the PLL output, computed by `tessera.boards.pll` for `clock_hz`; nextpnr derives its timing
constraint from the PLL's parameters and the 12 MHz input (the build also passes the target as `--freq`).
The chip is held in reset until the PLL has locked and then for POWER_ON_DELAY_S more: iCE40 block RAMs read as
zero for ~3 us after configuration.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, ResetSignal, Signal
from amaranth.lib import io, wiring

from tessera.boards.board import Board, ClockSource
from tessera.boards.pll import PllConfig, pll_config
from tessera.hw.io_node import MAX_PINS

#: Reset held this long after PLL lock (5x the block RAMs' ~3 us wake-up, as Amaranth's own iCE40 reset does).
POWER_ON_DELAY_S = 15e-6
#: SB_HFOSC's CLKHF_DIV setting for 48 MHz / 4 = 12 MHz.
HFOSC_DIV_12MHZ = "0b10"


class BoardTop(Elaboratable):
    """`chip` on `board` at `pll.output_hz` (see the module docstring)."""

    def __init__(self, board: Board, chip: wiring.Component, pll: PllConfig) -> None:
        members = chip.signature.members
        for name in ("uart_rx", "uart_tx"):
            if name not in members:
                raise ValueError(f"chip top {type(chip).__name__} has no `{name}` port (board tops need the UART pins)")
        self._board = board
        self._chip = chip
        self._pll = pll

    @classmethod
    def for_clock(cls, board: Board, chip: wiring.Component, clock_hz: float) -> BoardTop:
        return cls(board, chip, pll_config(board.reference_hz, clock_hz))

    @property
    def clock_hz(self) -> float:
        return self._pll.output_hz

    def elaborate(self, platform) -> Module:
        m = Module()
        pll_clock = Signal()
        locked = Signal()
        self._add_pll(m, platform, pll_clock, locked)

        # Power-on reset, counted in the PLL clock while the PLL is locked.
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.domains.sync = ClockDomain("sync")
        delay = max(1, int(POWER_ON_DELAY_S * self._pll.output_hz))
        timer = Signal(range(delay + 1))
        ready = Signal()
        m.d.comb += [ClockSignal("por").eq(pll_clock), ClockSignal("sync").eq(pll_clock)]
        with m.If(~locked):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += ResetSignal("sync").eq(~ready)

        m.submodules.chip = chip = self._chip
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [chip.uart_rx.eq(uart_rx.i), uart_tx.o.eq(chip.uart_tx)]

        members = chip.signature.members
        if "leds" in members:
            for index in range(min(len(chip.leds), _count(platform, "led"))):
                buffer = io.Buffer("o", platform.request("led", index, dir="-"))
                m.submodules[f"led{index}"] = buffer
                m.d.comb += buffer.o.eq(chip.leds[index])
        if "buttons" in members:
            for index in range(min(len(chip.buttons), _count(platform, "button"))):
                buffer = io.Buffer("i", platform.request("button", index, dir="-"))
                m.submodules[f"button{index}"] = buffer
                m.d.comb += chip.buttons[index].eq(buffer.i)
        return m

    def _add_pll(self, m: Module, platform, pll_clock: Signal, locked: Signal) -> None:
        parameters = self._pll.instance_parameters()
        common = dict(i_RESETB=1, i_BYPASS=0, o_LOCK=locked, **parameters)
        if self._board.clock_source is ClockSource.PLL_PAD:
            pad = platform.request(self._board.clock_resource, 0, dir="-")
            m.submodules.pll = Instance("SB_PLL40_PAD", i_PACKAGEPIN=pad.io, o_PLLOUTGLOBAL=pll_clock, **common)
        elif self._board.clock_source is ClockSource.PLL_CORE:
            pin = platform.request(self._board.clock_resource, 0, dir="-")
            m.submodules.clock_pin = clock_pin = io.Buffer("i", pin)
            m.submodules.pll = Instance(
                "SB_PLL40_CORE", i_REFERENCECLK=clock_pin.i, o_PLLOUTGLOBAL=pll_clock, **common
            )
        else:
            reference = Signal()
            m.submodules.hfosc = Instance(
                "SB_HFOSC", i_CLKHFEN=1, i_CLKHFPU=1, p_CLKHF_DIV=HFOSC_DIV_12MHZ, o_CLKHF=reference
            )
            m.submodules.pll = Instance("SB_PLL40_CORE", i_REFERENCECLK=reference, o_PLLOUTGLOBAL=pll_clock, **common)


def io_pins(board: Board) -> dict[str, int]:
    """The chip parameters `leds`/`buttons` for `board`: its LEDs and buttons, at most MAX_PINS each."""
    platform = board.platform()
    return {"leds": min(MAX_PINS, _count(platform, "led")), "buttons": min(MAX_PINS, _count(platform, "button"))}


def _count(platform, name: str) -> int:
    """How many resources called `name` (numbered from 0) the platform declares."""
    return sum(1 for (resource_name, _number) in platform.resources if resource_name == name)
