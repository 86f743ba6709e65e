"""The serial debug port (hw/debug_port.py) against its reference model (sim/debug_port_model.py): the host side
(DebugSerializer) must emit exactly the model's cycle sequences, and every target (DebugTarget over a block RAM, a
Tile with each core) must end with the model's memory and read back the model's words."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from tessera.firmware.asm import assemble
from tessera.hw.debug_serializer import DebugSerializer
from tessera.hw.tile import CORES, Tile
from tessera.sim.amaranth_harness import TileBench, TileDriver, simulate
from tessera.sim.debug_memory import DebugMemory
from tessera.sim.debug_port_model import (
    DebugCycle,
    DebugTargetModel,
    drive,
    read_cycles,
    word_from_bits,
    write_cycles,
)

ADDR_BITS = 8  # 1 KiB tiles


def random_transfers(rng: random.Random, count: int, addr_bits: int) -> list[tuple[str, int, int]]:
    """("write", address, word) and ("read", address, 0), reads mostly of words written before."""
    written: list[int] = []
    transfers = []
    for _ in range(count):
        if written and rng.random() < 0.5:
            transfers.append(("read", rng.choice(written), 0))
        else:
            address = rng.randrange(1 << addr_bits)
            word = rng.choice([0, 0xFFFFFFFF, 0x80000001, rng.getrandbits(32)])
            written.append(address)
            transfers.append(("write", address, word))
    return transfers


def cycles_of(kind: str, address: int, word: int, addr_bits: int) -> list[DebugCycle]:
    return write_cycles(address, word, addr_bits) if kind == "write" else read_cycles(address, addr_bits)


def significant(kind: str, index: int, cycle: DebugCycle) -> DebugCycle:
    """`cycle` (the `index`-th of a transfer) with the bits the protocol ignores cleared: data_in except in a
    write's shifts, addr_in except in the shifts that carry the address (a write's last ADDR_BITS of 32, a
    read's first ADDR_BITS)."""
    keeps_data = kind == "write" and index < 32
    keeps_addr = 32 - ADDR_BITS <= index < 32 if kind == "write" else index < ADDR_BITS
    return DebugCycle(
        shift=cycle.shift,
        data_in=cycle.data_in if keeps_data else 0,
        addr_in=cycle.addr_in if keeps_addr else 0,
        re=cycle.re,
        we=cycle.we,
    )


def test_serializer_emits_the_model_sequences_and_reads_back_what_it_wrote():
    rng = random.Random(7)
    transfers = random_transfers(rng, 40, ADDR_BITS)
    top = Module()
    top.submodules.serializer = serializer = DebugSerializer(addr_bits=ADDR_BITS)
    top.submodules.target = target = DebugMemory(addr_bits=ADDR_BITS)
    wiring.connect(top, serializer.port, target.port)
    model = DebugTargetModel([0] * (1 << ADDR_BITS), ADDR_BITS)
    seen_reads, model_reads = [], []

    async def bench(ctx):
        for kind, address, word in transfers:
            expected = cycles_of(kind, address, word, ADDR_BITS)
            # `register` is the initiator's word register, which the serializer shifts (`shift`, `rbit`, `wbit`).
            register = word
            ctx.set(serializer.addr, address)
            start = serializer.we if kind == "write" else serializer.re
            ctx.set(start, 1)
            await ctx.tick()
            ctx.set(start, 0)
            emitted, sampled = [], []
            for _ in range(200):
                ctx.set(serializer.wbit, register & 1)
                port = serializer.port
                cycle = DebugCycle(
                    shift=bool(ctx.get(port.shift)),
                    data_in=ctx.get(port.data_in),
                    addr_in=ctx.get(port.addr_in),
                    re=bool(ctx.get(port.re)),
                    we=bool(ctx.get(port.we)),
                )
                if cycle.shift or cycle.re or cycle.we or emitted:
                    emitted.append(cycle)
                assert ctx.get(serializer.shift) == cycle.shift
                if cycle.shift:
                    register = ctx.get(serializer.rbit) << 31 | register >> 1
                if ctx.get(serializer.done):
                    break
                await ctx.tick()
            else:
                pytest.fail(f"{kind} of word {address} never finished")
            # The serializer's cycles are the model's (the read's samples are the last 32 shifts, before `done`).
            if kind == "read":
                emitted.pop()  # the done cycle itself asks nothing
                seen_reads.append(register)
            assert [significant(kind, i, c) for i, c in enumerate(emitted)] == [
                significant(kind, i, c) for i, c in enumerate(expected)
            ], f"{kind} of word {address}: the port's cycles differ from the model's"
            for cycle in expected:
                if cycle.sample:
                    sampled.append(model.data_out)
                model.step(cycle)
            if kind == "read":
                model_reads.append(word_from_bits(sampled))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen_reads == model_reads
    assert model_reads, "the random transfers included reads"


def target_memory(ctx, dut) -> list[int]:
    data = (dut.memory if isinstance(dut, DebugMemory) else dut.memory_array).data
    return [ctx.get(data[i]) for i in range(data.depth)]


@pytest.mark.parametrize("target", ["memory", *CORES])
def test_targets_follow_the_model(target):
    """Random writes and reads driven cycle by cycle into a stopped target: same memory, same words read."""
    rng = random.Random(hash(target) & 0xFFFF)
    transfers = random_transfers(rng, 30, ADDR_BITS)
    dut = DebugMemory(addr_bits=ADDR_BITS) if target == "memory" else Tile(mem_bytes=1024, core=target)
    port = dut.port if target == "memory" else dut.debug
    if target == "memory":
        top = dut
    else:
        top = TileBench(dut)
    model = DebugTargetModel([0] * (1 << ADDR_BITS), ADDR_BITS)
    reads = []

    async def bench(ctx):
        for kind, address, word in transfers:
            cycles = cycles_of(kind, address, word, ADDR_BITS)
            sampled_model = []
            for cycle in cycles:
                if cycle.sample:
                    sampled_model.append(model.data_out)
                model.step(cycle)
            bits = await drive(ctx, port, cycles)
            if kind == "read":
                reads.append((word_from_bits(bits), word_from_bits(sampled_model)))
        assert target_memory(ctx, dut) == model.memory

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert reads and all(got == expected for got, expected in reads)


@pytest.mark.parametrize("core", CORES)
def test_a_running_tile_ignores_the_port(core):
    """Writes shifted in while the core runs change nothing; after a halt the port works again."""
    tile = Tile(mem_bytes=1024, core=core)
    spin = assemble("loop: addi x1, x1, 1\n j loop\n").words()
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(spin)
        await driver.pulse(tile.run)
        await drive(ctx, tile.debug, write_cycles(5, 0xDEADBEEF, ADDR_BITS))
        await drive(ctx, tile.debug, write_cycles(0, 0x12345678, ADDR_BITS))
        assert driver.memory_words()[:2] == tuple(spin) and driver.memory_words()[5] == 0
        await driver.pulse(tile.halt)
        assert await driver.wait_stopped(200) < 200
        await driver.write_words([0xCAFEF00D], 5)
        assert await driver.read_words(5, 1) == [0xCAFEF00D]
        assert await driver.read_words(0, 2) == list(spin)

    simulate(bench, testbench)


def test_the_model_rejects_two_requests_in_one_cycle_and_a_busy_load_cycle():
    model = DebugTargetModel([0] * 4, 2)
    with pytest.raises(ValueError, match="at most one of shift, re, we"):
        model.step(DebugCycle(shift=True, we=True))
    model.step(DebugCycle(re=True))
    with pytest.raises(ValueError, match="cycle after re must be idle"):
        model.step(DebugCycle(shift=True))
    with pytest.raises(ValueError, match="does not fit 2 bits"):
        write_cycles(4, 0, 2)
