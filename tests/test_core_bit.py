"""`BitSerialTileCore` (hw/core_bit.py) against the same checks as the other cores.

- The directed suite (tests/test_core_directed.py) is run with every `Tile` built around the bit-serial core,
  except the tests that count on `TileCore`'s stop timing or instruction length. Its five largest tables
  (ALU edge values, immediates, load widths, branch conditions, illegal words) are thinned to every second or
  third case to keep the run short; the Verilator co-simulation covers those instructions with 500 random
  programs.
- tests/test_core_serial.py restates the stop-timing tests for the serial cores' documented timing (stops wait
  for the instruction boundary) and runs them, the random co-simulation against the golden model and the C
  programs on the Tile's Verilog (Verilator) on both serial cores. The message-port wait is restated below
  with a longer bound, and the counter CSR test for the streamed counter (reads wait for their frame).
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
from collections.abc import Callable

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from tessera.firmware.isa import Cause, Csr, Opcode, TileState
from tessera.hw import tile as tile_module
from tessera.hw.chip import TesseraChip
from tessera.hw.core import decode_opcode
from tessera.hw.core_bit import FRAME_LEAD, BitSerialTileCore, counter_stream
from tessera.hw.tile import Tile
from tessera.sim.amaranth_harness import TileBench, TileDriver, run_program, simulate
from tessera.sim.encode import ECALL, addi, csr, custom0

_DIRECTED = pathlib.Path(__file__).with_name("test_core_directed.py")
_spec = importlib.util.spec_from_file_location("core_directed_suite_bit", _DIRECTED)
directed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(directed)

#: Directed tests that assume TileCore's cycle timing (restated in tests/test_core_serial.py).
TIMING_DEPENDENT = {
    "test_halt_run_and_reset_pc",
    "test_halt_at_every_step_of_an_instruction_keeps_the_architectural_state_exact",
    "test_fault_in_traps_at_the_current_pc_and_run_resumes",
    "test_debug_port_is_refused_while_running",
    "test_message_wait_is_sleeping_and_halt_abandons_it",  # waits 50 cycles for two instructions
    "test_csr_reads",  # expects six CSR reads within 256 cycles; counter reads wait for their frame here
}
#: Parametrised directed tests run on every n-th case only (see the module docstring).
THINNED = {
    "test_register_alu_edge_values": 3,
    "test_immediate_alu": 2,
    "test_load_widths_and_sign_extension": 2,
    "test_branch_conditions": 2,
    "test_illegal_instructions_trap_without_effects": 3,
}


def every_nth_case(test: Callable, n: int) -> Callable:
    """`test` (carrying one pytest.mark.parametrize) re-parametrised with its cases 0, n, 2n, ..."""
    (mark,) = [mark for mark in test.pytestmark if mark.name == "parametrize"]
    argnames, argvalues = mark.args
    ids = mark.kwargs.get("ids")
    keep = range(0, len(argvalues), n)

    @functools.wraps(test)
    def thinned(*args, **kwargs):
        return test(*args, **kwargs)

    thinned.pytestmark = []  # functools.wraps copied the original marks
    return pytest.mark.parametrize(
        argnames, [argvalues[i] for i in keep], ids=None if ids is None else [ids[i] for i in keep]
    )(thinned)


for _name in dir(directed):
    if _name.startswith("test_") and _name not in TIMING_DEPENDENT:
        _test = getattr(directed, _name)
        globals()[f"{_name}_bit"] = every_nth_case(_test, THINNED[_name]) if _name in THINNED else _test


@pytest.fixture(autouse=True)
def bit_serial_core(monkeypatch):
    """Every `Tile` built by a test in this file contains a `BitSerialTileCore`."""
    monkeypatch.setattr(tile_module, "TileCore", BitSerialTileCore)


def test_the_tile_really_holds_the_bit_serial_core():
    assert isinstance(Tile(mem_bytes=1024).core, BitSerialTileCore)
    assert isinstance(Tile(mem_bytes=1024, core="bit").core, BitSerialTileCore)


def test_chip_builds_with_the_bit_serial_core():
    chip = TesseraChip(tiles=2, mem_bytes=1024, link="bytes", core="bit")
    assert all(isinstance(node.tile.core, BitSerialTileCore) for node in chip.nodes)
    assert "bit core" in chip.summary()
    assert "module" in rtlil.convert(chip)


#: The message instruction's write-back pass and the ECALL's pass, with their fetches, with margin.
TWO_INSTRUCTIONS = 100


def test_message_wait_is_sleeping_and_halt_abandons_it():
    tile = Tile(mem_bytes=1024, has_message_unit=True)
    bench = TileBench(tile)
    code = [addi(1, 0, 6), custom0(2, 3, 1, 1), ECALL]

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        port = tile.message
        await driver.write_words(code)
        await driver.pulse(tile.run)
        await ctx.tick().until(port.valid)
        assert driver.status() == (TileState.SLEEPING, 0, 4)
        assert (ctx.get(port.funct3), ctx.get(port.funct7), ctx.get(port.rs1), ctx.get(port.rs2)) == (3, 0, 6, 6)
        await ctx.tick().repeat(10)
        assert driver.status()[0] == TileState.SLEEPING and ctx.get(port.valid)
        await driver.pulse(tile.halt)  # acts at once while SLEEPING: nothing of the instruction happened
        assert driver.status() == (TileState.HALTED, 0, 4) and not ctx.get(port.valid)
        await driver.pulse(tile.run)
        await ctx.tick().until(port.valid)
        ctx.set(port.result, 0xCAFE)
        await driver.pulse(port.ready)
        assert await driver.wait_stopped(TWO_INSTRUCTIONS) < TWO_INSTRUCTIONS
        assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 12)
        assert driver.registers()[2] == 0xCAFE

    simulate(bench, testbench)


def stream_reference(start: int, cycles: int) -> list[tuple[int, int, int]]:
    """Model of `counter_stream` for a counter that is `start` in the first cycle: (bit, start, high) per cycle."""
    snapshot, primed, out = 0, False, []
    for index, now in enumerate(range(start, start + cycles)):
        index %= 64
        out.append((snapshot & 1, int(primed and index % 32 == 32 - FRAME_LEAD), int(index < 32)))
        snapshot, primed = (now, True) if index == 63 else (snapshot >> 1, primed)
    return out


@pytest.mark.parametrize("start", [0, 5, 0x1_FFFF_FFC0, 0xFFFF_FFFF_FFFF_FF90])
def test_counter_stream_matches_its_model_and_frames_carry_the_snapshot(start: int):
    m = Module()
    cycle = Signal(64, init=start)
    m.d.sync += cycle.eq(cycle + 1)
    stream = counter_stream(m, cycle)
    cycles = 300
    expected = stream_reference(start, cycles)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    seen: list[tuple[int, int, int]] = []

    async def testbench(ctx):
        for _ in range(cycles):
            seen.append(tuple(ctx.get(value) for value in stream))
            await ctx.tick()

    sim.add_testbench(testbench)
    sim.run()
    assert seen == expected
    # Each announced frame carries the announced half of the counter's value at the last index-63 cycle.
    frames = [(at + FRAME_LEAD, high) for at, (_, starting, high) in enumerate(seen) if starting]
    assert frames
    for first, high in frames:
        if first + 32 > cycles:
            continue
        value = sum(seen[first + k][0] << k for k in range(32))
        snapshot = (start + first - first % 64 - 1) % (1 << 64)  # the counter at the last index-63 cycle
        assert value == (snapshot >> 32 if high else snapshot & 0xFFFF_FFFF)


def test_counter_reads_are_snapshots_and_the_retry_loop_reads_them_whole():
    code = [
        csr("csrrs", 1, Csr.CYCLEH),  # the standard loop: high, low, high again (retry if the highs differ)
        csr("csrrc", 2, Csr.CYCLE),
        csr("csrrs", 3, Csr.CYCLEH),
        csr("csrrsi", 4, Csr.TIMEH),
        csr("csrrci", 5, Csr.TIME),
        csr("csrrs", 6, Csr.MHARTID),
        ECALL,
    ]
    # The counter starts at reset at a multiple of 64; its low half wraps while the program runs.
    wrap = 2 << 32
    outcome = run_program(code, tile_id=0x2A, cycle_start=wrap - 64)
    start, end = outcome.run_cycle, outcome.run_cycle + outcome.cycles
    assert start < wrap < end
    regs = outcome.registers
    assert 1 <= regs[1] <= regs[3] <= regs[4] <= 2
    if regs[1] == regs[3]:
        assert start < (regs[1] << 32 | regs[2]) < end
    assert (regs[4] << 32 | regs[5]) < end
    # Snapshots are taken every 64 cycles from reset (the counter started at reset, at a multiple of 64).
    assert regs[2] % 64 == 63 and regs[5] % 64 == 63
    assert regs[6] == 0x2A


@pytest.mark.parametrize("has_message_unit", [False, True])
def test_decode_opcode_flags_name_exactly_their_opcode(has_message_unit: bool):
    """The shared decode (all three cores): for every value of bits 6..2, the flag of that opcode and no other."""
    m = Module()
    word = Signal(32)
    decoded = decode_opcode(word, has_message_unit)
    names = ["load", "store", "branch", "op", "op_imm", "lui", "auipc", "jal", "jalr", "system", "misc_mem", "custom0"]
    flags = {name: Signal(name=name) for name in names}
    m.d.comb += [flags[name].eq(getattr(decoded, name)) for name in names]
    sim = Simulator(m)
    seen: dict[int, set[str]] = {}

    async def testbench(ctx):
        for major in range(32):
            ctx.set(word, major << 2 | 0b11)
            seen[major] = {name for name in names if ctx.get(flags[name])}

    sim.add_testbench(testbench)
    sim.run()
    expected = {op.name.lower(): op >> 2 for op in Opcode}
    if not has_message_unit:
        del expected["custom0"]
    assert seen == {major: {name for name, value in expected.items() if value == major} for major in range(32)}

