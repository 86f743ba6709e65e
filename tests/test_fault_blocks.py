"""Block-level tests of the fault path against their reference models: FaultReporter (cycle by cycle against
tessera.sim.fault_reporter_model) and TileNode (on a ring with a host unit, against tessera.sim.tile_node_model)."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from tessera.firmware.asm import assemble
from tessera.firmware.isa import Cause, TileState
from tessera.firmware.isa import Opcode as IsaOpcode
from tessera.firmware.isa import encode_r
from tessera.hw.fault_reporter import FaultReporter
from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import phase_at_reset
from tessera.hw.noc_layouts import HOST_NODE, Flit, MessageOp, ring_length
from tessera.hw.tile_node import FAULT_FUNCT3, WATCHDOG_BITS, WATCHDOG_SHIFT, TileNode, decode_node_inputs
from tessera.os.protocol import ConfigRegister
from tessera.sim.fault_reporter_model import FaultReporterModel, ReporterInputs, Request
from tessera.sim.tile_node_model import TileNodeModel

STATES = list(TileState)
CAUSES = list(Cause)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fault_reporter_matches_model_cycle_by_cycle(seed: int) -> None:
    """Random core status (stops with every cause, stops during a report, supervisors valid or not), random core
    requests and a random message unit (0..3 cycles per operation, some refused): every output equals the
    model's in every cycle, whether the port carries the core's requests or the report's."""
    rng = random.Random(seed)
    dut = FaultReporter()
    model = FaultReporterModel()
    counts = {"reports": 0, "refused": 0, "passed": 0}

    async def bench(ctx) -> None:
        inputs = ReporterInputs(TileState.HALTED, 0, 0, 0, HOST_NODE, True)
        request = Request(False)
        wait = 0
        for cycle in range(6000):
            if rng.random() < 0.08:  # the core's status changes now and then, often to TRAPPED
                state = rng.choice([TileState.TRAPPED, TileState.TRAPPED, *STATES])
                inputs = ReporterInputs(state, rng.choice(CAUSES), rng.randrange(1 << 32), rng.randrange(1 << 8),
                                        rng.choice([HOST_NODE, rng.randrange(1 << 7)]), rng.random() < 0.8)
            if rng.random() < 0.2:  # the core's own requests, also while a report owns the port
                request = Request(rng.random() < 0.5, rng.randrange(8), rng.randrange(1 << 7),
                                  rng.randrange(1 << 32), rng.randrange(1 << 32))
            for name in ("state", "cause", "pc", "detail", "supervisor", "supervisor_valid"):
                ctx.set(getattr(dut, name), getattr(inputs, name))
            for name in ("valid", "funct3", "funct7", "rs1", "rs2"):
                ctx.set(getattr(dut.core, name), getattr(request, name))
            expected = model.outputs(inputs, request)
            got = (ctx.get(dut.busy), ctx.get(dut.discard), ctx.get(dut.widen), ctx.get(dut.restore))
            assert got == (expected.busy, expected.discard, expected.widen, expected.restore), \
                f"cycle {cycle}: RTL {got}, model {expected}"
            net = Request(*(ctx.get(getattr(dut.net, name)) for name in ("valid", "funct3", "funct7", "rs1", "rs2")))
            if expected.busy and not expected.net.valid:
                assert not net.valid, f"cycle {cycle}: RTL {net}, model {expected}"
            else:
                assert net == expected.net, f"cycle {cycle}: RTL {net}, model {expected}"
            ready = fault = False
            if net.valid:
                if wait == 0:
                    wait = rng.randrange(1, 5)
                wait -= 1
                ready = wait == 0
                fault = ready and rng.random() < 0.05
                result = rng.randrange(1 << 32)
                ctx.set(dut.net.result, result)
                if expected.busy:
                    counts["refused"] += fault
                    counts["reports"] += ready and not fault and net.funct3 == MessageOp.SEND.funct3
                else:
                    counts["passed"] += ready
            ctx.set(dut.net.ready, ready)
            ctx.set(dut.net.fault, fault)
            ctx.set(dut.net.cause, Cause.MESSAGE_FAULT if fault else 0)
            answer = (ctx.get(dut.core.ready), ctx.get(dut.core.fault), ctx.get(dut.core.cause))
            assert answer == (ready and not expected.busy, fault, Cause.MESSAGE_FAULT if fault else 0), cycle
            if net.valid:
                assert ctx.get(dut.core.result) == result, cycle
            await ctx.tick()
            model.clock(inputs, ready, fault)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert counts["reports"] > 20 and counts["refused"] > 0 and counts["passed"] > 20, counts


# ---------------------------------------------------------------------------------------------------------
# TileNode on a ring with the host's message unit (played by the testbench, as the bridge plays it)

TILES = 1
MEM_BYTES = 1024
A0 = 10


def msg_fault_funct7(rs1: int, funct7: int) -> str:
    """msg.fault's encoding with another funct7 (the assembler only writes the legal one)."""
    return f".word {encode_r(IsaOpcode.CUSTOM0, 0, FAULT_FUNCT3, rs1, 0, funct7):#010x}"


class NodeBench:
    """TileNode 0 and the host unit (127) on one ring; `host(...)` runs message operations as the bridge would."""

    def __init__(self) -> None:
        self.node = TileNode(tile_id=0, num_tiles=TILES, mem_bytes=MEM_BYTES, phase_at_reset=phase_at_reset(0))
        self.host_unit = MessageUnit(address=HOST_NODE, num_tiles=TILES, phase_at_reset=phase_at_reset(TILES))
        m = Module()
        m.submodules.node, m.submodules.host = self.node, self.host_unit
        outputs = [self.node.ring_out, self.host_unit.ring_out]
        for pad in range(ring_length(TILES + 1) - (TILES + 1)):
            register = Signal(Flit, name=f"pad{pad}")
            m.d.sync += register.eq(outputs[-1])
            outputs.append(register)
        m.d.comb += [self.node.ring_in.eq(outputs[-1]), self.host_unit.ring_in.eq(outputs[0])]
        m.d.comb += [self.host_unit.permissions.we.eq(1), self.host_unit.permissions.data.eq(-1)]
        self.cycle = Signal(64)
        m.d.sync += self.cycle.eq(self.cycle + 1)
        m.d.comb += self.node.cycle.eq(self.cycle)
        self.top = m

    async def host(self, ctx, op: MessageOp, rs1: int = 0, rs2: int = 0, limit: int = 3000) -> int:
        core = self.host_unit.core
        for name, value in (("funct3", op.funct3), ("funct7", op.funct7), ("rs1", rs1), ("rs2", rs2), ("valid", 1)):
            ctx.set(getattr(core, name), value)
        for _ in range(limit):
            if ctx.get(core.ready):
                assert not ctx.get(core.fault), f"host {op.name} faulted with cause {ctx.get(core.cause)}"
                result = ctx.get(core.result)
                await ctx.tick()
                ctx.set(core.valid, 0)
                return result
            await ctx.tick()
        raise AssertionError(f"host {op.name} did not complete in {limit} cycles")

    async def host_send(self, ctx, tag: int, words: list[int]) -> None:
        for word in words:
            await self.host(ctx, MessageOp.PUT, word)
        await self.host(ctx, MessageOp.SEND, 0, tag)

    async def host_receive(self, ctx, limit: int = 3000) -> tuple[int, int, tuple[int, ...]] | None:
        """The next message for the host within `limit` cycles: (source, tag, words), or None."""
        for _ in range(limit // 4):
            header = await self.host(ctx, MessageOp.TRYRECV)
            if header:
                words = [await self.host(ctx, MessageOp.GET) for _ in range((header >> 8) & 7)]
                return header & 0x7F, header >> 16, tuple(words)
        return None

    async def control(self, ctx, name: str, value: int | None = None, register: ConfigRegister | None = None):
        port = self.node.control
        if register is not None:
            ctx.set(port.config_we, 1)
            ctx.set(port.config_index, register)
            ctx.set(port.config_data, value)
        else:
            ctx.set(getattr(port, name), 1)
        await ctx.tick()
        for signal in (port.config_we, port.run, port.halt, port.reset_pc):
            ctx.set(signal, 0)

    async def load(self, ctx, words: list[int]) -> None:
        debug = self.node.control.debug
        await self.control(ctx, "halt")
        await self.control(ctx, "reset_pc")
        for index, word in enumerate(words):
            ctx.set(debug.addr, index)
            ctx.set(debug.wdata, word)
            ctx.set(debug.wmask, 0b1111)
            ctx.set(debug.we, 1)
            await ctx.tick()
        ctx.set(debug.we, 0)

    async def wait_state(self, ctx, state: TileState, limit: int = 5000) -> int:
        """Cycles until the tile is in `state`."""
        for waited in range(limit):
            if ctx.get(self.node.control.state) == state:
                return waited
            await ctx.tick()
        raise AssertionError(f"tile not {state.name} after {limit} cycles (state {ctx.get(self.node.control.state)})")

    def counters(self, ctx) -> tuple[int, int, int]:
        return ctx.get(self.node.messages_in), ctx.get(self.node.messages_out), ctx.get(self.node.retired)


def run_node(scenario) -> None:
    bench = NodeBench()

    async def testbench(ctx) -> None:
        await scenario(bench, ctx)

    sim = Simulator(bench.top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


#: Receive a message, send its word + 1 to the host, then loop until the watchdog stops the tile.
SERVE_ONCE_THEN_HANG = f"""
    msg.recv t0
    msg.get t1
    addi t1, t1, 1
    msg.put t1
    li t2, {HOST_NODE}
    li t3, 7
    msg.send t2, t3
hang:
    j hang
"""


def test_watchdog_decode_follows_the_model() -> None:
    """The chip's one decoder of a WATCHDOG word: on = the word is not 0, and the whole steps (the word's, or all
    ones when saturated) plus the rounding bit = the model's steps (rounded up, saturating), at the rounding and
    saturation edges and for random words."""
    rng = random.Random(5)
    edges = [0, 1, 255, 256, 257, 511, 512, (1 << 24) - 512, (1 << 24) - 256, (1 << 24) - 255, 1 << 24, (1 << 32) - 1]
    words = edges + [rng.randrange(1 << rng.randrange(1, 33)) for _ in range(300)]
    m = Module()
    word, cycle = Signal(32), Signal(64)
    decoded = decode_node_inputs(m, word, cycle, TILES)

    async def bench(ctx) -> None:
        for value in words:
            ctx.set(word, value)
            model = TileNodeModel(num_tiles=TILES)
            model.write_config(ConfigRegister.WATCHDOG, value)
            assert ctx.get(decoded.watchdog_on) == (value != 0), value
            if value:
                whole = (value >> WATCHDOG_SHIFT) & ((1 << WATCHDOG_BITS) - 1)
                high = (1 << WATCHDOG_BITS) - 1 if ctx.get(decoded.watchdog_saturated) else whole
                steps = high + ctx.get(decoded.watchdog_round)
                assert steps == model.watchdog_steps, (value, steps, model.watchdog_steps)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("period", [1000, 2560])
def test_tile_node_watchdog_counters_and_down_follow_the_model(period: int) -> None:
    """One message served (counters), the watchdog expiring inside the model's window, DOWN(WATCHDOG) to the host."""
    model = TileNodeModel(num_tiles=TILES)
    program = assemble(SERVE_ONCE_THEN_HANG)

    async def scenario(bench: NodeBench, ctx) -> None:
        await bench.load(ctx, program.words())
        model.reset_pc()
        for register, value in ((ConfigRegister.PERMISSIONS, 1 << TILES), (ConfigRegister.SUPERVISOR, HOST_NODE),
                                (ConfigRegister.WATCHDOG, period)):
            await bench.control(ctx, "", value, register)
            model.write_config(register, value)
        assert model.may_send(HOST_NODE) and not model.may_send(0)
        await bench.control(ctx, "run")
        await bench.host_send(ctx, 9, [41])
        assert await bench.host_receive(ctx) == (0, 7, (42,))
        model.opened()
        model.sent()
        model.retire(program.symbols["hang"] // 4)
        # The SEND was the last message instruction: the watchdog counts from its completion.
        core = bench.node.tile.message
        last_kick = 0
        for waited in range(3000):
            if ctx.get(bench.node.control.state) == TileState.TRAPPED:
                break
            if ctx.get(core.valid) and ctx.get(core.ready):
                last_kick = waited
            await ctx.tick()
        else:
            raise AssertionError("the watchdog never expired")
        earliest, latest = model.watchdog_window()
        assert earliest <= waited - last_kick <= latest + 2, (waited - last_kick, earliest, latest)
        assert ctx.get(bench.node.control.cause) == Cause.WATCHDOG
        pc = ctx.get(bench.node.control.pc)
        assert pc == program.symbols["hang"]
        model.stopped(Cause.WATCHDOG, pc)
        destination, tag, words = model.downs[-1]
        assert destination == HOST_NODE and await bench.host_receive(ctx) == (0, tag, words)
        messages_in, messages_out, retired = bench.counters(ctx)
        assert (messages_in, messages_out) == (model.messages_in, model.messages_out)
        assert retired > model.retired  # plus the passes through `hang`
        await bench.control(ctx, "reset_pc")
        model.reset_pc()
        assert bench.counters(ctx) == (model.messages_in, model.messages_out, model.retired) == (0, 0, 0)

    run_node(scenario)


@pytest.mark.parametrize(
    ("name", "body", "supervisor"),
    [
        ("assertion keeps rs1's low byte", "li a0, 0x1234\nbad: msg.fault a0", HOST_NODE),
        ("msg.fault with funct7 1 is illegal", f"li a0, 0x99\nbad: {msg_fault_funct7(A0, 1)}", HOST_NODE),
        ("staged words are dropped", "li t1, 77\nmsg.put t1\nbad: .word 0", HOST_NODE),
        ("a breakpoint sends nothing", "nop\nbad: ebreak", HOST_NODE),
        ("no supervisor, no DOWN", "bad: lw t1, 1(x0)", 50),
        ("ECALL is reported past itself", "addi a0, x0, 5\nbad: ecall", HOST_NODE),
    ],
)
def test_tile_node_stop_reports_follow_the_model(name: str, body: str, supervisor: int) -> None:
    model = TileNodeModel(num_tiles=TILES)
    program = assemble(body + "\n")

    async def scenario(bench: NodeBench, ctx) -> None:
        await bench.load(ctx, program.words())
        model.reset_pc()
        for register, value in ((ConfigRegister.PERMISSIONS, 1 << TILES), (ConfigRegister.SUPERVISOR, supervisor)):
            await bench.control(ctx, "", value, register)
            model.write_config(register, value)
        await bench.control(ctx, "run")
        await bench.wait_state(ctx, TileState.TRAPPED)
        cause = Cause(ctx.get(bench.node.control.cause))
        pc = ctx.get(bench.node.control.pc)
        bad = program.symbols["bad"]
        if "msg.fault" in name or "assertion" in name:
            funct7 = 1 if "funct7 1" in name else 0
            assert cause == model.message_fault(funct7, 0x1234 if funct7 == 0 else 0x99), name
        model.stopped(cause, pc)
        resumable = cause in (Cause.ECALL, Cause.BREAKPOINT)
        assert pc == bad + 4 * resumable, (name, pc)
        model.retire(bad // 4 + resumable)
        expected = (0, *model.downs[-1][1:]) if model.downs else None  # as the host receives it: source 0
        assert await bench.host_receive(ctx, limit=400) == expected, name
        assert bench.counters(ctx) == (model.messages_in, model.messages_out, model.retired), name

    run_node(scenario)
