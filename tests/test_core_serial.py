"""The serial cores, `SerialTileCore` (hw/core_serial.py) and `BitSerialTileCore` (hw/core_bit.py), against the
same checks as `TileCore`.

- The directed suite (tests/test_core_directed.py) is run again with every `Tile` built around the serial core,
  except its tests that count cycles or expect `halt`/`fault_in` to act in the cycle they arrive
  (tests/test_core_bit.py does the same for the bit-serial core).
- Those timing tests are restated below for the serial cores' documented timing (stops wait for the
  instruction boundary), and run on both serial cores (the `core` fixture).
- Random programs (sim/randprog.py) co-simulated against the golden model, and the C programs (crc32, sort,
  bench), on the Tile's Verilog under Verilator (tests/cocotb/tile_tb.py), as tests/test_core_cocotb.py does for
  `TileCore`: on both serial cores.
"""

from __future__ import annotations

import importlib.util
import pathlib
import struct
import zlib

import pytest

from tessera.firmware.cc import compile_program, toolchain_available
from tessera.firmware.isa import Cause, TileState
from tessera.hw import tile as tile_module
from tessera.hw.core_bit import BitSerialTileCore
from tessera.hw.core_serial import SerialTileCore
from tessera.hw.tile import Tile
from tessera.sim import cocotb_runner
from tessera.sim.amaranth_harness import TileBench, TileDriver, simulate
from tessera.sim.cocotb_tile import MEM_BYTES, TEST_MODULE, TILE_ID
from tessera.sim.encode import ECALL, addi, alu, jal, li, store
from tessera.sim.model import TileModel
from tessera.sim.tile_with_loader import TileWithLoader

_DIRECTED = pathlib.Path(__file__).with_name("test_core_directed.py")
_spec = importlib.util.spec_from_file_location("core_directed_suite", _DIRECTED)
directed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(directed)

#: Directed tests that assume TileCore's cycle timing; restated below.
TIMING_DEPENDENT = {
    "test_halt_run_and_reset_pc",
    "test_halt_at_every_step_of_an_instruction_keeps_the_architectural_state_exact",
    "test_fault_in_traps_at_the_current_pc_and_run_resumes",
    "test_debug_port_is_refused_while_running",
}
for _name in dir(directed):
    if _name.startswith("test_") and _name not in TIMING_DEPENDENT:
        globals()[f"{_name}_serial"] = getattr(directed, _name)


@pytest.fixture(autouse=True)
def serial_core(monkeypatch):
    """Every `Tile` built by a test in this file contains a `SerialTileCore`."""
    monkeypatch.setattr(tile_module, "TileCore", SerialTileCore)


def test_the_tile_really_holds_the_serial_core():
    assert isinstance(Tile(mem_bytes=1024).core, SerialTileCore)


#: The serial cores by name, with a bound on their longest instruction plus its fetch (with margin): for
#: "serial" a register shift by 31 or a taken branch (28 cycles); for "bit" SRA by 31 or an LH at offset 2
#: (two passes, 68 cycles, plus up to 31 alignment cycles).
SERIAL_CORES = {"serial": (SerialTileCore, 40), "bit": (BitSerialTileCore, 110)}


@pytest.fixture(params=sorted(SERIAL_CORES))
def core(request, monkeypatch) -> int:
    """Build every `Tile` of the test around the named serial core; return its instruction-cycle bound."""
    core_class, instruction_cycles = SERIAL_CORES[request.param]
    monkeypatch.setattr(tile_module, "TileCore", core_class)
    return instruction_cycles


LOOP = [addi(1, 1, 1), jal(0, -4)]


async def stop_with(driver: TileDriver, pulse, expected: TileState, instruction_cycles: int) -> None:
    """Pulse `pulse`; the tile must reach `expected` within one instruction."""
    await driver.pulse(pulse)
    waited = await driver.wait_stopped(instruction_cycles)
    assert waited < instruction_cycles
    assert driver.status()[0] == expected


def test_halt_run_and_reset_pc(core: int):
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        assert driver.status() == (TileState.HALTED, 0, 0)
        await driver.write_words(LOOP)
        await driver.pulse(tile.run)
        await ctx.tick().repeat(5 * core)  # several loop iterations
        assert driver.status()[0] == TileState.RUNNING
        await stop_with(driver, tile.halt, TileState.HALTED, core)
        pc = driver.status()[2]
        assert pc in (0, 4)
        count = driver.registers()[1]
        assert count > 3
        await ctx.tick().repeat(50)
        assert driver.registers()[1] == count and driver.status()[2] == pc
        await driver.pulse(tile.run)
        await ctx.tick().repeat(5 * core // 2)
        assert driver.registers()[1] > count
        await driver.pulse(tile.reset_pc)  # reset_pc acts at once
        assert driver.status() == (TileState.HALTED, 0, 0)
        count = driver.registers()[1]
        await driver.pulse(tile.run)
        await stop_with(driver, tile.halt, TileState.HALTED, core)  # the loop starts again: its addi completes
        assert driver.registers()[1] == count + 1 and driver.status()[2] == 4

    simulate(bench, testbench)


@pytest.mark.parametrize("delay", [0, 1, 3, 5, 8, 13, 21])
def test_halt_at_any_cycle_keeps_the_architectural_state_exact(delay, core: int):
    """Halts land on many different cycles of a store/add sequence; stopping and running on gives the answer."""
    code = [
        *li(1, 0x100), addi(2, 0, 1), alu("add", 2, 2, 2), store("sw", 2, 1, 0), alu("sll", 2, 2, 2),
        store("sw", 2, 1, 4), ECALL,
    ]
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(code)
        halts = 0
        for _ in range(50):
            await driver.pulse(tile.run)
            await ctx.tick().repeat(12 + delay)
            if driver.status()[0] != TileState.RUNNING:
                break
            await driver.pulse(tile.halt)
            assert await driver.wait_stopped(core) < core
            if driver.status()[0] != TileState.HALTED:  # the instruction in flight was the ECALL
                break
            halts += 1
        assert halts >= 2
        assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 4 * len(code))
        assert await driver.read_words(0x40, 2) == [2, 8]
        assert driver.registers()[2] == 8

    simulate(bench, testbench)


def test_fault_in_traps_at_the_next_pc_and_run_resumes(core: int):
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(LOOP)
        await driver.pulse(tile.run)
        await ctx.tick().repeat(150)
        ctx.set(tile.fault_in_cause, Cause.WATCHDOG)
        await stop_with(driver, tile.fault_in_valid, TileState.TRAPPED, core)
        state, cause, pc = driver.status()
        assert cause == Cause.WATCHDOG and pc in (0, 4)
        count = driver.registers()[1]
        await driver.pulse(tile.run)
        await ctx.tick().repeat(5 * core // 2)
        assert driver.registers()[1] > count
        assert driver.status()[0] == TileState.RUNNING
        ctx.set(tile.fault_in_cause, Cause.ASSERTION)
        await stop_with(driver, tile.fault_in_valid, TileState.TRAPPED, core)
        await driver.pulse(tile.fault_in_valid)  # a stopped tile traps at once
        assert driver.status()[:2] == (TileState.TRAPPED, Cause.ASSERTION)

    simulate(bench, testbench)


def test_debug_port_is_refused_while_running(core: int):
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(LOOP + [0x1111_1111])
        await driver.pulse(tile.run)
        await driver.write_words([0x2222_2222], base_word=2)
        await driver.write_words([0xFFFF_FFFF], base_word=0)  # would break the loop if it landed
        assert driver.status()[0] == TileState.RUNNING
        await stop_with(driver, tile.halt, TileState.HALTED, core)
        assert await driver.read_words(0, 3) == LOOP + [0x1111_1111]
        await driver.write_words([0x3333_3333], base_word=2)
        assert await driver.read_words(2, 1) == [0x3333_3333]

    simulate(bench, testbench)


# -- Verilog under Verilator: random co-simulation and the C programs ---------------------------------------

SIMULATOR = "verilator"
RANDOM_CHUNKS = [(0, 250), (250, 250)]
RANDOM_BODY_ITEMS = 40
RANDOM_MAX_CYCLES = 400_000
C_MAX_CYCLES = 5_000_000
RESULT_SYMBOLS = {
    "crc32": ("crc_result",),
    "sort": ("sort_data",),
    "bench": ("bench_result", "mix_table", "sieve_composite"),
}


def build_serial_tile(core_name: str) -> cocotb_runner.CocotbBuild:
    tile = Tile(mem_bytes=MEM_BYTES, tile_id=TILE_ID, core=core_name)
    assert isinstance(tile.core, SERIAL_CORES[core_name][0])
    return cocotb_runner.build(TileWithLoader(tile), "tile_tb_top", SIMULATOR)


@pytest.mark.slow
@pytest.mark.parametrize("core_name", sorted(SERIAL_CORES))
@pytest.mark.parametrize("first_seed,count", RANDOM_CHUNKS)
def test_random_programs_against_the_model(core_name: str, first_seed: int, count: int) -> None:
    run = cocotb_runner.run(
        build_serial_tile(core_name),
        TEST_MODULE,
        testcase="random_cosim",
        payload={
            "first_seed": first_seed,
            "count": count,
            "body_items": RANDOM_BODY_ITEMS,
            "mem_bytes": MEM_BYTES,
            "tile_id": TILE_ID,
            "max_cycles": RANDOM_MAX_CYCLES,
        },
    )
    assert run.output == {"checked": count, "mismatches": []}


@pytest.mark.slow
@pytest.mark.skipif(not toolchain_available(), reason="riscv64-unknown-elf-gcc is not installed")
@pytest.mark.parametrize("core_name", sorted(SERIAL_CORES))
def test_c_programs(core_name: str) -> None:
    images = {name: compile_program(name, MEM_BYTES) for name in ("crc32", "sort", "bench")}
    batch = {
        "images": [
            {"name": name, "words": image.words(), "max_cycles": C_MAX_CYCLES} for name, image in images.items()
        ],
        "read_words": MEM_BYTES // 4,
    }
    run = cocotb_runner.run(build_serial_tile(core_name), TEST_MODULE, testcase="run_images", payload=batch)
    records = {record["name"]: record for record in run.output}
    for name, image in images.items():
        model = TileModel(MEM_BYTES, tile_id=TILE_ID)
        model.load_bytes(image.data)
        assert model.run(C_MAX_CYCLES) == (TileState.TRAPPED, Cause.ECALL)
        record = records[name]
        assert (record["state"], record["cause"], record["pc"]) == (TileState.TRAPPED, Cause.ECALL, model.pc), name
        assert record["retired"] == model.instret, name
        memory = struct.pack(f"<{MEM_BYTES // 4}I", *record["memory"])
        expected = bytes(model.mem)
        # bench.c also stores cycle counts, which differ between cores; its results are these symbols.
        for symbol in RESULT_SYMBOLS[name]:
            where = image.symbols[symbol]
            span = slice(where.address, where.address + where.size)
            assert memory[span] == expected[span], f"{name}: {symbol}"
    crc = images["crc32"]
    result = crc.symbols["crc_result"]
    message = crc.initial_bytes("crc_message").rstrip(b"\0")
    memory = struct.pack(f"<{MEM_BYTES // 4}I", *records["crc32"]["memory"])
    assert memory[result.address : result.address + 4] == struct.pack("<I", zlib.crc32(message))
    sort = images["sort"]
    data = sort.symbols["sort_data"]
    memory = struct.pack(f"<{MEM_BYTES // 4}I", *records["sort"]["memory"])
    values = struct.unpack(f"<{data.size // 4}i", memory[data.address : data.address + data.size])
    assert list(values) == sorted(struct.unpack(f"<{data.size // 4}i", sort.initial_bytes("sort_data")))
    print(f"{core_name} core, bench.c: {records['bench']['cycles']} cycles, {records['bench']['retired']} retired,"
          f" CPI {records['bench']['cycles'] / records['bench']['retired']:.2f}")
