"""Random co-simulation of the tile gateware (Amaranth simulator) against the golden model, and C programs.

Each batch runs many programs in ONE simulation of a `Tile` (elaboration costs more than a short program):
between programs the testbench writes the image straight into the memory's storage, pulses reset_pc (registers
are kept: every random program's prologue sets all of them) and pulses run. At the stop it compares with the
model the whole architectural state: state, cause, pc, x1..x31 (read from the register file's storage, so a
faulting instruction's lack of side effects on registers is checked directly), every memory word, and the number
of `retired` pulses against the model's instret.

Amaranth's simulator manages about a thousand cycles per second on this design, so this file keeps to roughly a
hundred random programs and the short C programs; the thousands-of-programs batch runs on Verilator
(tests/cocotb/tile_tb.py, `random_cosim`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from tessera.firmware.cc import compile_program, toolchain_available
from tessera.firmware.isa import TileState
from tessera.hw.tile import Tile
from tessera.sim import randprog
from tessera.sim.amaranth_harness import TileBench, TileDriver, serve_messages, simulate
from tessera.sim.model import MessageUnit, TileModel

MEM_BYTES = 2048
TILE_ID = 0x5A
BATCHES = 4
PROGRAMS_PER_BATCH = 60
BODY_ITEMS = 30
FIRST_SEED = 1_000
MESSAGE_PROGRAMS = 40


@dataclass(frozen=True)
class Stop:
    """The tile's architectural state when it stopped (or when the cycle budget ran out)."""

    state: int
    cause: int
    pc: int
    registers: tuple[int, ...]  # x1..x31
    memory: tuple[int, ...]
    retired: int
    cycles: int
    registers_at_start: tuple[int, ...]  # x1..x31 when the program started (reset does not clear them)


def run_batch_on_gateware(
    images: Sequence[Sequence[int]], *, max_cycles: int, message_unit: MessageUnit | None = None
) -> list[Stop]:
    """Run each image from pc 0 on one simulated tile, in order, and capture how each one stopped.

    With `message_unit`, the tile has a message port and the unit answers it (`serve_messages`).
    """
    tile = Tile(mem_bytes=MEM_BYTES, tile_id=TILE_ID, has_message_unit=message_unit is not None)
    bench = TileBench(tile)
    stops: list[Stop] = []

    async def testbench(ctx) -> None:
        driver = TileDriver(ctx, bench)
        for image in images:
            driver.set_memory(image)
            await driver.pulse(tile.reset_pc)
            registers_at_start = driver.registers()[1:]
            cycle, retired = ctx.get(bench.cycle), ctx.get(bench.retired)
            await driver.pulse(tile.run)
            await ctx.tick().until(bench.stopped | (bench.cycle >= cycle + max_cycles))
            state, cause, pc = driver.status()
            stops.append(
                Stop(
                    state=state,
                    cause=cause,
                    pc=pc,
                    registers=driver.registers()[1:],
                    memory=driver.memory_words(),
                    retired=ctx.get(bench.retired) - retired,
                    cycles=ctx.get(bench.cycle) - cycle,
                    registers_at_start=registers_at_start,
                )
            )
            if state in (TileState.RUNNING, TileState.SLEEPING):
                await driver.pulse(tile.halt)

    simulate(bench, testbench, background=[serve_messages(bench, message_unit)] if message_unit else [])
    return stops


def run_on_model(
    image: Sequence[int], registers: Sequence[int], max_steps: int, message_unit: MessageUnit | None = None,
    tile_id: int = TILE_ID,
) -> Stop:
    """Run on the model from the same registers x1..x31 as the gateware started with."""
    model = TileModel(MEM_BYTES, tile_id, message_unit, has_instret=False)  # the core does not implement instret
    model.regs[1:] = registers
    model.load(image)
    model.run(max_steps)
    return Stop(
        state=model.state,
        cause=model.cause,
        pc=model.pc,
        registers=tuple(model.regs[1:]),
        memory=tuple(model.words()),
        retired=model.instret,
        cycles=0,
        registers_at_start=tuple(registers),
    )


def differences(gateware: Stop, model: Stop) -> list[str]:
    """What differs, one line per item (empty when the gateware matches the model)."""
    found = []
    for name in ("state", "cause", "pc", "retired"):
        if getattr(gateware, name) != getattr(model, name):
            found.append(f"{name}: gateware {getattr(gateware, name)}, model {getattr(model, name)}")
    found += [
        f"x{index + 1}: gateware {got:#010x}, model {want:#010x}"
        for index, (got, want) in enumerate(zip(gateware.registers, model.registers, strict=True))
        if got != want
    ]
    found += [
        f"memory[{4 * index:#x}]: gateware {got:#010x}, model {want:#010x}"
        for index, (got, want) in enumerate(zip(gateware.memory, model.memory, strict=True))
        if got != want
    ]
    return found


def check_random_batch(seeds: range, messages: bool) -> None:
    programs = [
        randprog.generate(
            seed, mem_bytes=MEM_BYTES, body_items=BODY_ITEMS, fault="random", tile_id=TILE_ID, messages=messages
        )
        for seed in seeds
    ]
    unit = randprog.OperandMessageUnit() if messages else None
    stops = run_batch_on_gateware([program.words for program in programs], max_cycles=20_000, message_unit=unit)
    report = []
    for program, stop in zip(programs, stops, strict=True):
        model_unit = randprog.OperandMessageUnit() if messages else None
        model = run_on_model(program.words, stop.registers_at_start, max_steps=20_000, message_unit=model_unit)
        problems = differences(stop, model)
        if problems:
            report.append(
                f"seed {program.seed} ({', '.join(program.description)}):\n    " + "\n    ".join(problems[:8])
            )
    assert not report, f"{len(report)} of {len(programs)} random programs differ from the model:\n" + "\n".join(report)
    assert {stop.state for stop in stops} == {TileState.TRAPPED}


@pytest.mark.parametrize("batch", range(BATCHES))
def test_random_programs_match_the_model(batch: int) -> None:
    check_random_batch(
        range(FIRST_SEED + batch * PROGRAMS_PER_BATCH, FIRST_SEED + (batch + 1) * PROGRAMS_PER_BATCH), False
    )


def test_random_programs_with_message_instructions_match_the_model() -> None:
    """Custom-0 through a message unit that makes the core sleep for a while, answers, or faults."""
    check_random_batch(range(FIRST_SEED + 50_000, FIRST_SEED + 50_000 + MESSAGE_PROGRAMS), True)


@pytest.mark.skipif(not toolchain_available(), reason="riscv64-unknown-elf-gcc is not installed")
def test_c_programs_on_the_gateware() -> None:
    """crc32, sort and a shortened bench on the gateware: same end state as the model, and correct results."""
    crc = compile_program("crc32", MEM_BYTES)
    sort = compile_program("sort", MEM_BYTES)
    bench = compile_program("bench", MEM_BYTES)
    bench_words = bench.words()
    bench_words[bench.address("bench_rounds") // 4] = 10  # the sieve alone is ~20k cycles: keep the mixing short
    images = [crc.words(), sort.words(), bench_words]
    stops = run_batch_on_gateware(images, max_cycles=200_000)
    for name, image, stop in zip(("crc32", "sort", "bench"), images, stops, strict=True):
        problems = differences(stop, run_on_model(image, stop.registers_at_start, max_steps=1_000_000))
        assert not problems, f"{name} differs from the model:\n" + "\n".join(problems[:10])
        print(f"{name}: {stop.retired} instructions in {stop.cycles} cycles, CPI {stop.cycles / stop.retired:.2f}")
    crc_stop, sort_stop, _ = stops
    message = crc.initial_bytes("crc_message").rstrip(b"\0")
    assert crc_stop.registers[9] == zlib.crc32(message)  # a0 = x10
    assert sort_stop.registers[9] == 0
    count = sort.symbols["sort_data"].size // 4
    first = sort.address("sort_data") // 4
    as_signed = [word - (1 << 32) if word >> 31 else word for word in sort_stop.memory[first : first + count]]
    original = [
        int.from_bytes(sort.initial_bytes("sort_data")[i : i + 4], "little", signed=True)
        for i in range(0, 4 * count, 4)
    ]
    assert as_signed == sorted(original)
