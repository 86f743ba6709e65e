"""Drives a Verilog `TileWithLoader` (sim/tile_with_loader.py: a Tile and the host side of its serial debug port)
from cocotb: clock and reset, word loads and reads through the loader, run to a stop, and the whole tile memory
set or read straight in the simulator (VPI) where the debug port is not what is tested.

Port names are Amaranth's flattened signature paths (`loader__addr`, `run`, `state`, ...). Every method is entered
and left just after a falling clock edge: inputs are changed there and outputs sampled there, half a period away
from the rising edge where the design samples and updates, so no read races a write. While the tile runs, Python
sleeps on the `state` signal (and on a timeout) instead of waking every clock; retired instructions are counted by
the harness (`retired_total`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cocotb.clock import Clock
from cocotb.handle import Immediate, SimHandleBase
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from tessera.firmware.isa import TileState

CLOCK_NS = 10
_STOPPED = (TileState.HALTED, TileState.TRAPPED)


@dataclass(frozen=True)
class Stop:
    """How a run ended. `state` is RUNNING or SLEEPING when the cycle budget ran out first."""

    state: TileState
    cause: int
    pc: int
    cycles: int  # rising clock edges from the one that took the run pulse to the one that stopped the tile
    retired: int  # `retired` pulses in those cycles


class TileDriver:
    def __init__(self, dut: SimHandleBase) -> None:
        self.dut = dut
        self._falling = FallingEdge(dut.clk)
        # Handle look-ups by attribute are slow enough to matter in per-clock loops.
        self._addr = dut.loader__addr
        self._re = dut.loader__re
        self._we = dut.loader__we
        self._wdata = dut.loader__wdata
        self._rdata = dut.loader__rdata
        self._done = dut.loader__done
        self._retired_total = dut.retired_total
        # The tile's block RAM, `reg [31:0] memory [depth-1:0]` in module `tile` (the Verilog of hw/tile.py's
        # `m.submodules.memory`), one handle per word.
        memory = dut.tile.memory
        self._rows = [memory[index] for index in range(len(memory))]

    async def start(self) -> None:
        """Start the clock, hold reset for two cycles and leave every input idle."""
        dut = self.dut
        # The C++ clock: Python need not wake on clock edges nobody waits for (the default on Icarus is a Python
        # coroutine toggling the clock).
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        dut.rst.value = 1
        for name in ("run", "halt", "reset_pc", "fault_in_valid", "fault_in_cause", "cycle"):
            getattr(dut, name).value = 0
        for name in ("addr", "re", "we", "wdata"):
            getattr(dut, f"loader__{name}").value = 0
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await self._falling

    @property
    def state(self) -> TileState:
        return TileState(int(self.dut.state.value))

    async def pulse(self, name: str) -> None:
        """Hold control input `name` high across exactly one rising edge."""
        signal = getattr(self.dut, name)
        signal.value = 1
        await self._falling
        signal.value = 0

    async def _transfers(self, start: Any, requests: Sequence[tuple[int, int]]) -> list[int]:
        """Run loader transfers (word address, write data) back to back with `start` (the loader's `we` or `re`)
        held high: the loader starts the next one as soon as it is idle, so Python wakes once per word, when `done`
        rises (the next request is set up then). For reads, returns the words read (`rdata` at each `done`); after
        writes, the last word is in memory (`memory_words` sees it)."""
        results: list[int] = []
        if not requests:
            return results
        address, word = requests[0]
        self._addr.value, self._wdata.value = address, word
        start.value = 1
        for index in range(len(requests)):
            await RisingEdge(self._done)
            if index + 1 < len(requests):
                address, word = requests[index + 1]
                self._addr.value, self._wdata.value = address, word
            else:
                start.value = 0
            if start is self._re:
                await ReadOnly()
                results.append(int(self._rdata.value))
        await self._falling
        if start is self._we:  # a write's `done` cycle asks the memory, which takes the word at its end
            await self._falling
        return results

    async def write_words(self, words: Sequence[int], first_word: int = 0) -> None:
        """Write whole words through the tile's serial debug port (the loader shifts each in), from `first_word`."""
        await self._transfers(self._we, [(first_word + offset, word) for offset, word in enumerate(words)])

    async def read_words(self, first_word: int, count: int) -> list[int]:
        """Read `count` words through the tile's serial debug port, from word address `first_word`."""
        return await self._transfers(self._re, [(address, 0) for address in range(first_word, first_word + count)])

    def set_memory(self, words: Sequence[int]) -> None:
        """Make the tile memory hold `words` from word 0 and zeros after them, written straight into the simulator's
        copy of the block RAM (VPI, effective at once): no time passes and the debug port is not used. For tests of
        what the core does with a program; a test of loading writes with `write_words`."""
        if len(words) > len(self._rows):
            raise ValueError(f"{len(words)} words do not fit {len(self._rows)} words of memory")
        for row, word in zip(self._rows, [*words, *[0] * (len(self._rows) - len(words))]):
            row.set(Immediate(word))

    def memory_words(self) -> list[int]:
        """Every word of the tile memory, read from the simulator's copy of the block RAM (VPI): no time passes and
        the debug port is not used. For checking results; a test of the port reads with `read_words`."""
        return [int(row.value) for row in self._rows]

    async def run_until_stopped(self, max_cycles: int) -> Stop:
        """Pulse `run` and wait until the tile is HALTED or TRAPPED, or until `max_cycles` have passed."""
        dut = self.dut
        retired_before = int(self._retired_total.value)
        dut.run.value = 1
        started_ns = get_sim_time("ns") + CLOCK_NS / 2  # the rising edge that takes the pulse
        await self._falling
        dut.run.value = 0
        if self.state in _STOPPED:
            raise AssertionError(f"the run pulse did not start the tile (state {self.state.name})")
        deadline_ns = started_ns + max_cycles * CLOCK_NS
        while self.state not in _STOPPED:
            remaining_ns = deadline_ns - get_sim_time("ns")
            if remaining_ns <= 0:
                break
            timeout = Timer(remaining_ns, unit="ns", round_mode="round")
            if await First(dut.state.value_change, timeout) is timeout:
                break
        # The state changes at a rising edge: return to the falling-edge rhythm.
        await self._falling
        retired = (int(self._retired_total.value) - retired_before) % (1 << len(self._retired_total))
        cycles = round((get_sim_time("ns") - CLOCK_NS / 2 - started_ns) / CLOCK_NS)
        return Stop(self.state, int(dut.cause.value), int(dut.pc.value), cycles, retired)

    async def stop_and_rewind(self) -> None:
        """Whatever the tile is doing, stop it and put it back at pc 0 in HALTED (registers and memory kept)."""
        if self.state not in _STOPPED:
            await self.pulse("halt")
            await self._falling
        await self.pulse("reset_pc")
        await self._falling
        if self.state != TileState.HALTED or int(self.dut.pc.value) != 0:
            raise AssertionError(f"reset_pc left state {self.state.name}, pc {int(self.dut.pc.value):#x}")
