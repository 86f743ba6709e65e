"""Two bit-core tiles sharing one SPRAM bank (behavioural, hw/spram_bank.py) run random programs at the same time,
in the Amaranth simulator; each must end exactly as the golden model ends the same program alone. The bank's
first port, which wins over both tiles, is a random initiator of the testbench's, busy in about half the cycles
in a slice of its own: so fetches, loads and stores all wait (`ready` low) now and then, and must neither repeat
nor lose their access, and no tile may reach another's slice."""

from __future__ import annotations

import random

from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import wiring

from tessera.firmware.isa import TileState
from tessera.hw.spram_bank import SpramBank
from tessera.hw.tile import Tile
from tessera.sim import randprog
from tessera.sim.amaranth_harness import simulate

# Helpers of the single-tile co-simulation (tests/conftest.py puts the folder on sys.path).
from test_core_cosim import MEM_BYTES, TILE_ID, Stop, differences, run_on_model

PROGRAMS = 16
MAX_CYCLES = 40_000


class SharedBankBench(Elaboratable):
    """Two tiles (ids TILE_ID and TILE_ID + 1) on ports 1 and 2 of a bank whose port 0 (`rival`) the testbench
    drives; `stopped` when both tiles are HALTED or TRAPPED."""

    def __init__(self) -> None:
        self.tiles = [Tile(mem_bytes=MEM_BYTES, tile_id=TILE_ID + index, core="bit", outside_memory=True)
                      for index in range(2)]
        self.bank = SpramBank(ports=3, addr_bits=(MEM_BYTES // 4).bit_length() - 1)
        self.rival = self.bank.ports[0]
        self.cycle = Signal(64)
        self.retired = [Signal(32, name=f"retired_{index}") for index in range(2)]
        self.stopped = Signal()
        self.waits = Signal(32)  # cycles in which a core's request was not taken

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = self.bank
        stops = []
        for index, tile in enumerate(self.tiles):
            m.submodules[f"tile{index}"] = tile
            wiring.connect(m, tile.memory, self.bank.ports[1 + index])
            m.d.comb += tile.cycle.eq(self.cycle)
            with m.If(tile.retired):
                m.d.sync += self.retired[index].eq(self.retired[index] + 1)
            stops.append((tile.state == TileState.HALTED) | (tile.state == TileState.TRAPPED))
        waiting = [(tile.memory.re | tile.memory.we) & ~tile.memory.ready for tile in self.tiles]
        m.d.sync += [self.cycle.eq(self.cycle + 1), self.waits.eq(self.waits + waiting[0] + waiting[1])]
        m.d.comb += self.stopped.eq(stops[0] & stops[1])
        return m


def test_two_tiles_on_one_bank_match_the_model() -> None:
    programs = [randprog.generate(seed, mem_bytes=MEM_BYTES, body_items=30, fault="random", tile_id=TILE_ID + seed % 2)
                for seed in range(7_000, 7_000 + PROGRAMS)]
    bench = SharedBankBench()
    slice_words = 16384 // 4
    stops: list[Stop] = []
    total_waits = []

    async def testbench(ctx) -> None:
        storage = bench.bank.memory_array.data
        for first in range(0, PROGRAMS, 2):
            pair = programs[first : first + 2]
            for index, program in enumerate(pair):
                words = [*program.words, *[0] * (MEM_BYTES // 4 - len(program.words))]
                for address, word in enumerate(words):
                    ctx.set(storage[(1 + index) * slice_words + address], word)
            for tile in bench.tiles:
                ctx.set(tile.reset_pc, 1)
            await ctx.tick()
            for tile in bench.tiles:
                ctx.set(tile.reset_pc, 0)
            starts = [[tile.core.peek_register(ctx, r) for r in range(1, 32)] for tile in bench.tiles]
            retired = [ctx.get(counter) for counter in bench.retired]
            cycle, waits = ctx.get(bench.cycle), ctx.get(bench.waits)
            for tile in bench.tiles:
                ctx.set(tile.run, 1)
            await ctx.tick()
            for tile in bench.tiles:
                ctx.set(tile.run, 0)
            await ctx.tick().until(bench.stopped | (bench.cycle >= cycle + MAX_CYCLES))
            total_waits.append(ctx.get(bench.waits) - waits)
            for index, tile in enumerate(bench.tiles):
                base = (1 + index) * slice_words
                stops.append(Stop(
                    state=ctx.get(tile.state), cause=ctx.get(tile.cause), pc=ctx.get(tile.pc),
                    registers=tuple(tile.core.peek_register(ctx, r) for r in range(1, 32)),
                    memory=tuple(ctx.get(storage[base + a]) for a in range(MEM_BYTES // 4)),
                    retired=ctx.get(bench.retired[index]) - retired[index], cycles=0,
                    registers_at_start=tuple(starts[index]),
                ))

    async def rival(ctx) -> None:
        rng = random.Random(5)
        async for _ in ctx.tick():
            busy = rng.random() < 0.5
            ctx.set(bench.rival.addr, rng.randrange(MEM_BYTES // 4))
            ctx.set(bench.rival.wdata, rng.getrandbits(32))
            ctx.set(bench.rival.wmask, 0b1111)
            ctx.set(bench.rival.we, busy and rng.random() < 0.5)
            ctx.set(bench.rival.re, busy)

    simulate(bench, testbench, background=[rival])
    report = []
    for number, (program, stop) in enumerate(zip(programs, stops, strict=True)):
        model = run_on_model(program.words, stop.registers_at_start, max_steps=20_000, tile_id=TILE_ID + number % 2)
        problems = differences(stop, model)
        if problems:
            report.append(f"seed {program.seed} on tile {number % 2}:\n    " + "\n    ".join(problems[:8]))
    assert not report, f"{len(report)} of {len(programs)} programs differ from the model:\n" + "\n".join(report)
    assert {stop.state for stop in stops} == {TileState.TRAPPED}
    assert min(total_waits) > 20, total_waits  # the cores waited often in every pair
