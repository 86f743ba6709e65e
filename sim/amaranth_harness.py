"""Drive a `tessera.hw.tile.Tile` in Amaranth's simulator.

Two levels:
- `run_program(words, ...)`: one call that builds a tile, puts `words` straight into its memory (no clock cycles),
  pulses `run`, waits until the tile stops (HALTED or TRAPPED) or a cycle limit passes, and returns a `TileOutcome`
  with the status ports, the registers and the memory. The directed core tests use this.
- `TileBench` + `TileDriver`: for tests that need to act while the tile runs (pulses at chosen times, the
  debug port while running, a hand-driven message port). `TileBench` wraps the tile with a free-running
  chip-wide cycle counter and a retired counter, so waiting costs no Python work per cycle. `TileDriver` loads
  memory either through the serial debug port (`write_words`, 33 simulated cycles a word: for tests of the port
  and of loading) or straight into the simulated block RAM (`set_memory`, no cycles: for tests of what the core
  does with a program).

The core does not implement instret/instreth (docs/core.md): compare against `TileModel(..., has_instret=False)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.sim import Simulator

from tessera.firmware.isa import MASK32, TileState
from tessera.hw.core import check_mem_bytes
from tessera.hw.tile import Tile
from tessera.sim.debug_port_model import drive, read_cycles, word_from_bits, write_cycles
from tessera.sim.model import MessageUnit

__all__ = ["TileBench", "TileDriver", "TileOutcome", "run_program", "serve_messages", "simulate"]


@dataclass(frozen=True)
class TileOutcome:
    """What a tile looked like when `run_program` stopped waiting.

    state: TRAPPED or HALTED if the tile stopped, RUNNING or SLEEPING if `max_cycles` ran out first.
    run_cycle: the bench's cycle counter in the cycle of the run pulse (`cycle_start`: the run pulse comes first).
    cycles: clock cycles from the run pulse to the stop (or the limit); retired: `retired` pulses in that time.
    registers: x0..x31. memory: every word of the tile memory (read from the simulated block RAM).
    """

    state: TileState
    cause: int
    pc: int
    run_cycle: int
    cycles: int
    retired: int
    registers: tuple[int, ...]
    memory: tuple[int, ...]


class TileBench(Elaboratable):
    """Simulation wrapper: a tile plus the chip-wide `cycle` counter (starting at `cycle_start`), a count of
    retired pulses, and `stopped` (the tile is HALTED or TRAPPED)."""

    def __init__(self, tile: Tile, *, cycle_start: int = 0):
        if not 0 <= cycle_start < 1 << 64:
            raise ValueError(f"cycle_start {cycle_start:#x} does not fit the 64-bit counter")
        self.tile = tile
        self.cycle = Signal(64, init=cycle_start)
        self.retired = Signal(32)
        self.stopped = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.tile = self.tile
        m.d.sync += self.cycle.eq(self.cycle + 1)
        with m.If(self.tile.retired):
            m.d.sync += self.retired.eq(self.retired + 1)
        m.d.comb += [
            self.tile.cycle.eq(self.cycle),
            self.stopped.eq((self.tile.state == TileState.HALTED) | (self.tile.state == TileState.TRAPPED)),
        ]
        return m


class TileDriver:
    """Async helpers for one `TileBench` inside a testbench (`ctx` is the testbench context)."""

    def __init__(self, ctx, bench: TileBench):
        self.ctx = ctx
        self.bench = bench
        self.tile = bench.tile

    async def pulse(self, signal, value: int = 1) -> None:
        """Drive `signal` to `value` for one clock cycle."""
        self.ctx.set(signal, value)
        await self.ctx.tick()
        self.ctx.set(signal, 0)

    def _check_fits(self, words: Sequence[int], base_word: int) -> None:
        """Raise ValueError unless `words` are 32-bit values that fit the memory from word address `base_word`."""
        depth = self.tile.mem_bytes // 4
        if base_word < 0 or base_word + len(words) > depth:
            raise ValueError(f"{len(words)} words at word {base_word} do not fit {depth} words of memory")
        for index, word in enumerate(words):
            if not 0 <= word <= MASK32:
                raise ValueError(f"word {word:#x} at index {index} does not fit 32 bits")

    async def write_words(self, words: Sequence[int], base_word: int = 0) -> None:
        """Write whole words through the serial debug port, from word address `base_word`."""
        self._check_fits(words, base_word)
        addr_bits = check_mem_bytes(self.tile.mem_bytes)
        for index, word in enumerate(words):
            await drive(self.ctx, self.tile.debug, write_cycles(base_word + index, word, addr_bits))

    async def read_words(self, base_word: int, count: int) -> list[int]:
        """Read `count` words through the serial debug port, from word address `base_word`."""
        addr_bits = check_mem_bytes(self.tile.mem_bytes)
        values = []
        for index in range(count):
            bits = await drive(self.ctx, self.tile.debug, read_cycles(base_word + index, addr_bits))
            values.append(word_from_bits(bits))
        return values

    async def wait_stopped(self, max_cycles: int) -> int:
        """Wait until the tile is HALTED or TRAPPED, at most `max_cycles` cycles; return the cycles waited."""
        for waited in range(max_cycles):
            if self.ctx.get(self.bench.stopped):
                return waited
            await self.ctx.tick()
        return max_cycles

    def set_memory(self, words: Sequence[int]) -> None:
        """Make the simulated block RAM hold `words` from word 0 and zeros after them (no clock cycles pass)."""
        self._check_fits(words, 0)
        data = self.tile.memory_array.data
        for index, word in enumerate([*words, *[0] * (self.tile.mem_bytes // 4 - len(words))]):
            self.ctx.set(data[index], word)

    def memory_words(self) -> tuple[int, ...]:
        """Every word of the tile memory, read from the simulated block RAM (no clock cycles pass)."""
        data = self.tile.memory_array.data
        return tuple(self.ctx.get(data[index]) for index in range(self.tile.mem_bytes // 4))

    def registers(self) -> tuple[int, ...]:
        """x0..x31 as the register file holds them now."""
        return tuple(self.tile.core.peek_register(self.ctx, index) for index in range(32))

    def status(self) -> tuple[TileState, int, int]:
        """(state, cause, pc) at the tile boundary now."""
        return TileState(self.ctx.get(self.tile.state)), self.ctx.get(self.tile.cause), self.ctx.get(self.tile.pc)


def serve_messages(bench: TileBench, unit: MessageUnit) -> Callable[..., Awaitable[None]]:
    """A background testbench that answers the tile's message port from `unit` (see `sim.model.MessageUnit`).

    Each cycle with `valid` high the unit is asked; None leaves `ready` low (the tile sleeps and asks again).
    """
    port = bench.tile.message

    async def process(ctx) -> None:
        while True:
            reply = None
            if ctx.get(port.valid):
                reply = unit.execute(ctx.get(port.funct3), ctx.get(port.funct7), ctx.get(port.rs1), ctx.get(port.rs2))
            ctx.set(port.ready, reply is not None)
            if reply is not None:
                ctx.set(port.result, reply.result)
                ctx.set(port.fault, reply.fault)
                ctx.set(port.cause, reply.cause)
            await ctx.tick()

    return process


def simulate(bench: TileBench, testbench: Callable[..., Awaitable[None]], *, background=(), vcd: str | None = None) -> None:
    """Run `testbench(ctx)` on `bench` with a 1 MHz clock (plus `background` testbenches); optionally write a VCD."""
    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    for process in background:
        sim.add_testbench(process, background=True)
    if vcd is None:
        sim.run()
    else:
        with sim.write_vcd(vcd):
            sim.run()


def run_program(
    words: Sequence[int],
    *,
    mem_bytes: int = 1024,
    tile_id: int = 0,
    message_unit: MessageUnit | None = None,
    max_cycles: int = 20_000,
    cycle_start: int = 0,
) -> TileOutcome:
    """Put `words` into memory from address 0 (`TileDriver.set_memory`: no clock cycles, so the run pulse is in
    the bench's first cycle, `cycle_start`), run from pc 0, and report how the tile stopped.

    The tile has a message port iff `message_unit` is given; the unit answers it as `serve_messages` says.
    """
    tile = Tile(mem_bytes=mem_bytes, tile_id=tile_id, has_message_unit=message_unit is not None)
    bench = TileBench(tile, cycle_start=cycle_start)
    outcome: list[TileOutcome] = []

    async def testbench(ctx) -> None:
        driver = TileDriver(ctx, bench)
        driver.set_memory(words)
        start = ctx.get(bench.cycle)
        await driver.pulse(tile.run)
        await driver.wait_stopped(max_cycles)
        cycles = ctx.get(bench.cycle) - start
        state, cause, pc = driver.status()
        retired = ctx.get(bench.retired)
        registers = driver.registers()
        outcome.append(TileOutcome(state, cause, pc, start, cycles, retired, registers, driver.memory_words()))

    background = [serve_messages(bench, message_unit)] if message_unit is not None else []
    simulate(bench, testbench, background=background)
    return outcome[0]
