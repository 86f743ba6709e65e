"""Block-level tests of the fault path against their reference models: FaultReporter (cycle by cycle against
tessera.sim.fault_reporter_model) and TileNode (on a ring with a host unit, against tessera.sim.tile_node_model),
built with the parallel core and with the board's bit-serial core."""

from __future__ import annotations

import random
from collections.abc import Callable

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
from tessera.hw.core import check_mem_bytes
from tessera.hw.down_message import DOWN_TAG
from tessera.hw.noc_layouts import HOST_NODE, Flit, MessageOp, ring_length
from tessera.hw.tile_node import FAULT_FUNCT3, WATCHDOG_BITS, WATCHDOG_SHIFT, TileNode, decode_node_inputs
from tessera.os.protocol import ConfigRegister
from tessera.sim.debug_port_model import drive, write_cycles
from tessera.sim.fault_reporter_model import FaultReporterModel, ReporterInputs, Request
from tessera.sim.tile_node_model import TileNodeModel

STATES = list(TileState)
CAUSES = list(Cause)


Drive = Callable[[int], tuple[ReporterInputs, Request]]
Answer = Callable[[int, Request, bool], tuple[bool, bool]]


def run_reporter_against_model(drive: Drive, answer: Answer, cycles: int) -> list[dict]:
    """FaultReporter and FaultReporterModel side by side for `cycles` cycles: `drive(cycle)` gives the inputs and
    the core's request, `answer(cycle, net, busy)` the unit's (ready, fault) to the request the port carries. Every
    output must equal the model's in every cycle; returns what happened in each cycle (for the caller's checks)."""
    dut = FaultReporter()
    model = FaultReporterModel()
    trace: list[dict] = []

    async def bench(ctx) -> None:
        for cycle in range(cycles):
            inputs, request = drive(cycle)
            for name in ("state", "cause", "pc", "detail", "supervisor", "supervisor_valid"):
                ctx.set(getattr(dut, name), getattr(inputs, name))
            for name in ("valid", "funct3", "funct7", "rs1", "rs2"):
                ctx.set(getattr(dut.core, name), getattr(request, name))
            expected = model.outputs(inputs, request)
            got = (ctx.get(dut.busy), ctx.get(dut.discard))
            assert got == (expected.busy, expected.discard), f"cycle {cycle}: RTL {got}, model {expected}"
            net = Request(*(ctx.get(getattr(dut.net, name)) for name in ("valid", "funct3", "funct7", "rs1", "rs2")))
            assert net == expected.net, f"cycle {cycle}: RTL {net}, model {expected}"
            ready, fault = answer(cycle, net, expected.busy) if net.valid else (False, False)
            result = cycle * 0x9E3779B1 & 0xFFFFFFFF
            for name, value in (("ready", ready), ("fault", fault), ("result", result),
                                ("cause", Cause.MESSAGE_FAULT if fault else 0)):
                ctx.set(getattr(dut.net, name), value)
            answer_to_core = (ctx.get(dut.core.ready), ctx.get(dut.core.fault), ctx.get(dut.core.cause))
            assert answer_to_core == (ready and not expected.busy, fault, Cause.MESSAGE_FAULT if fault else 0), cycle
            assert ctx.get(dut.core.result) == result, cycle
            trace.append({"inputs": inputs, "busy": expected.busy, "discard": expected.discard, "net": net,
                          "ready": ready, "fault": fault})
            await ctx.tick()
            model.clock(inputs, ready, fault)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace


def random_unit(rng: random.Random, refusals: float) -> Answer:
    """A message unit answering each operation after 1..4 cycles, refusing a fraction `refusals` of them."""
    wait = 0

    def answer(cycle: int, net: Request, busy: bool) -> tuple[bool, bool]:
        nonlocal wait
        if wait == 0:
            wait = rng.randrange(1, 5)
        wait -= 1
        return wait == 0, wait == 0 and rng.random() < refusals

    return answer


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fault_reporter_matches_model_cycle_by_cycle(seed: int) -> None:
    """Random core status (stops with every cause, stops ending or starting again during a report, supervisors
    valid or not), random core requests and a random message unit (1..4 cycles per operation, some refused): every
    output equals the model's in every cycle, whether the port carries the core's requests or the report's."""
    rng = random.Random(seed)
    state = {"inputs": ReporterInputs(TileState.HALTED, 0, 0, 0, HOST_NODE, True), "request": Request(False)}

    def drive(cycle: int) -> tuple[ReporterInputs, Request]:
        if rng.random() < 0.05:  # the core's status changes now and then, often to TRAPPED
            new_state = rng.choice([TileState.TRAPPED, TileState.TRAPPED, *STATES])
            state["inputs"] = ReporterInputs(new_state, rng.choice(CAUSES), rng.randrange(1 << 32),
                                             rng.randrange(1 << 8), rng.choice([HOST_NODE, rng.randrange(1 << 7)]),
                                             rng.random() < 0.8)
        if rng.random() < 0.2:  # the core's own requests, also while a report owns the port
            state["request"] = Request(rng.random() < 0.5, rng.randrange(8), rng.randrange(1 << 7),
                                       rng.randrange(1 << 32), rng.randrange(1 << 32))
        return state["inputs"], state["request"]

    trace = run_reporter_against_model(drive, random_unit(rng, 0.05), 8000)
    served = [c for c in trace if c["ready"]]
    sent = [c for c in served if c["busy"] and not c["fault"] and c["net"].funct3 == MessageOp.SEND.funct3]
    refused = [c for c in served if c["busy"] and c["fault"]]
    passed = [c for c in served if not c["busy"]]
    abandoning = [c for c in trace if c["busy"] and c["discard"]]
    assert len(sent) > 20 and refused and len(passed) > 20 and len(abandoning) > 5, \
        (len(sent), len(refused), len(passed), len(abandoning))


@pytest.mark.parametrize("ending", ["run", "reset_pc"])
def test_fault_reporter_abandons_a_stop_the_host_ends(ending: str) -> None:
    """The host ends the stay in TRAPPED (`run`: RUNNING with a new pc; `reset_pc`: HALTED, cause and pc 0) at every
    point of the report, and the restarted core asks for a PUT at once: RTL = model in every cycle, and, following
    the unit's staged words as a unit would, either the whole DOWN message goes out with the stop's words or nothing
    does, and no word of the report is staged when the core's own PUT is served."""
    stop = ReporterInputs(TileState.TRAPPED, Cause.ASSERTION, 0x1234_5678, 0xA5, HOST_NODE, True)
    after = (ReporterInputs(TileState.RUNNING, Cause.ASSERTION, 0x40, 0xA5, HOST_NODE, True) if ending == "run"
             else ReporterInputs(TileState.HALTED, 0, 0, 0xA5, HOST_NODE, True))
    own_put = Request.of(MessageOp.PUT, 0x77, 0)
    outcomes = set()
    for ends_at in range(2, 30):
        def drive(cycle: int) -> tuple[ReporterInputs, Request]:
            if cycle < 1:
                return ReporterInputs(TileState.RUNNING, 0, 0x20, 0xA5, HOST_NODE, True), Request(False)
            if cycle < ends_at:
                return stop, Request(False)
            return after, own_put if cycle > ends_at else Request(False)

        def unit(cycle: int, net: Request, busy: bool) -> tuple[bool, bool]:
            return cycle % 3 == 0, False  # every operation waits for the next cycle that is a multiple of 3

        staged: list[int] = []
        downs = []
        for cycle, step in enumerate(run_reporter_against_model(drive, unit, ends_at + 20)):
            net = step["net"]
            if step["ready"] and not step["busy"]:  # the core's PUT
                assert staged == [], (ends_at, cycle, staged)
                break
            if step["ready"] and net.funct3 == MessageOp.PUT.funct3:
                staged.append(net.rs1)
            if step["ready"] and net.funct3 == MessageOp.SEND.funct3:
                downs.append((net.rs1, net.rs2, staged))
                staged = []
            if step["discard"]:
                staged = []
        else:
            raise AssertionError(f"the core's PUT was not served (stay ended at {ends_at})")
        assert downs in ([], [(HOST_NODE, DOWN_TAG, [Cause.ASSERTION, 0x1234_5678, 0xA5])]), (ends_at, downs)
        outcomes.add(bool(downs))
        if ends_at > 20:  # long enough for the whole report
            assert downs, ends_at
    assert outcomes == {False, True}


# ---------------------------------------------------------------------------------------------------------
# TileNode on a ring with the host's message unit (played by the testbench, as the bridge plays it)

TILES = 1
MEM_BYTES = 1024
A0 = 10
#: The TileNode tests run with each of these builds (core, the mailboxes' `separate_staging`): the parallel core, and
#: the board chip's bit-serial core with either mailbox layout (the HX8K board's keep staging in the queue's EBR).
NODE_BUILDS = [
    pytest.param("parallel", True, id="parallel"),
    pytest.param("bit", True, id="bit"),
    pytest.param("bit", False, id="bit-one-ebr-mailbox"),
]


def msg_fault_funct7(rs1: int, funct7: int) -> str:
    """msg.fault's encoding with another funct7 (the assembler only writes the legal one)."""
    return f".word {encode_r(IsaOpcode.CUSTOM0, 0, FAULT_FUNCT3, rs1, 0, funct7):#010x}"


class NodeBench:
    """TileNode 0 and the host unit (127) on one ring; `host(...)` runs message operations as the bridge would."""

    def __init__(self, core: str, separate_staging: bool) -> None:
        self.node = TileNode(
            tile_id=0, num_tiles=TILES, mem_bytes=MEM_BYTES, phase_at_reset=phase_at_reset(0), core=core,
            separate_staging=separate_staging,
        )
        self.host_unit = MessageUnit(
            address=HOST_NODE, num_tiles=TILES, phase_at_reset=phase_at_reset(TILES), separate_staging=separate_staging
        )
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
        addr_bits = check_mem_bytes(self.node.tile.mem_bytes)
        for index, word in enumerate(words):
            await drive(ctx, debug, write_cycles(index, word, addr_bits))

    async def wait_state(self, ctx, state: TileState, limit: int = 5000) -> int:
        """Cycles until the tile is in `state`."""
        for waited in range(limit):
            if ctx.get(self.node.control.state) == state:
                return waited
            await ctx.tick()
        raise AssertionError(f"tile not {state.name} after {limit} cycles (state {ctx.get(self.node.control.state)})")

    def counters(self, ctx) -> tuple[int, int, int]:
        return ctx.get(self.node.messages_in), ctx.get(self.node.messages_out), ctx.get(self.node.retired)


def run_node(scenario, core: str, separate_staging: bool) -> None:
    bench = NodeBench(core, separate_staging)

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


@pytest.mark.parametrize(("core", "separate_staging"), NODE_BUILDS)
@pytest.mark.parametrize("period", [1000, 2560])
def test_tile_node_watchdog_counters_and_down_follow_the_model(period: int, core: str, separate_staging: bool) -> None:
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

    run_node(scenario, core, separate_staging)


@pytest.mark.parametrize(("core", "separate_staging"), NODE_BUILDS)
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
def test_tile_node_stop_reports_follow_the_model(
    name: str, body: str, supervisor: int, core: str, separate_staging: bool
) -> None:
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

    run_node(scenario, core, separate_staging)


#: Stops with ECALL (a word staged before it), then sends one word to the host with tag 9 and stops at a breakpoint.
ECALL_THEN_SEND = f"""
    li t1, 77
    msg.put t1
    ecall
after:
    li t1, 5
    msg.put t1
    li t2, {HOST_NODE}
    li t3, 9
bad:
    msg.send t2, t3
    ebreak
"""


@pytest.mark.parametrize(("core", "separate_staging"), NODE_BUILDS)
@pytest.mark.parametrize("ending", ["run", "reset_pc"])
@pytest.mark.parametrize("delay", [0, 1, 3, 5, 8, 12, 40])
def test_tile_node_stop_ended_by_the_host_during_its_report(
    ending: str, delay: int, core: str, separate_staging: bool
) -> None:
    """The host ends an ECALL stop `delay` cycles after it began, during or after its DOWN report (`run`, or
    `reset_pc` and `run`, after which the program stops with ECALL again): the stop's DOWN arrives whole or not at
    all (always for a late end, never for an end in the stop's first cycle), no report word and no word staged
    before the stop leaks into the tile's next message, and every later stop is reported as the model says."""
    model = TileNodeModel(num_tiles=TILES)
    program = assemble(ECALL_THEN_SEND)

    async def scenario(bench: NodeBench, ctx) -> None:
        await bench.load(ctx, program.words())
        for register, value in ((ConfigRegister.PERMISSIONS, 1 << TILES), (ConfigRegister.SUPERVISOR, HOST_NODE)):
            await bench.control(ctx, "", value, register)
            model.write_config(register, value)
        await bench.control(ctx, "run")
        await bench.wait_state(ctx, TileState.TRAPPED)
        model.stopped(Cause.ECALL, program.symbols["after"])
        first_down = (0, *model.downs[-1][1:])
        for _ in range(delay):
            await ctx.tick()
        later = []
        received = []
        if ending == "reset_pc":  # the program runs from the start again and stops at its ECALL again
            await bench.control(ctx, "reset_pc")
            await bench.control(ctx, "run")
            await bench.wait_state(ctx, TileState.TRAPPED)
            model.stopped(Cause.ECALL, program.symbols["after"])
            later.append((0, *model.downs[-1][1:]))
            while (message := await bench.host_receive(ctx, limit=600)) is not None:
                received.append(message)
        await bench.control(ctx, "run")
        later.append((0, 9, (5,)))
        while (message := await bench.host_receive(ctx, limit=600)) is not None:
            received.append(message)
        assert received in (later, [first_down, *later]), (delay, received)
        if delay == 0:
            assert received == later, received
        if delay >= 40:
            assert received == [first_down, *later], received

    run_node(scenario, core, separate_staging)


@pytest.mark.parametrize(("core", "separate_staging"), NODE_BUILDS)
def test_tile_node_down_reaches_a_supervisor_the_tile_may_not_send_to(core: str, separate_staging: bool) -> None:
    """With an empty permission set the DOWN messages still reach the supervisor, and the tile's own SEND, resumed
    at once (during the DOWN report), is denied all the same: its stop is reported as the model says."""
    model = TileNodeModel(num_tiles=TILES)
    program = assemble(ECALL_THEN_SEND)

    async def scenario(bench: NodeBench, ctx) -> None:
        await bench.load(ctx, program.words())
        for register, value in ((ConfigRegister.PERMISSIONS, 0), (ConfigRegister.SUPERVISOR, HOST_NODE)):
            await bench.control(ctx, "", value, register)
            model.write_config(register, value)
        assert not model.may_send(HOST_NODE)
        await bench.control(ctx, "run")
        await bench.wait_state(ctx, TileState.TRAPPED)
        model.stopped(Cause.ECALL, program.symbols["after"])
        for _ in range(12):  # into the report's SEND (after three PUTs), then resume the tile
            await ctx.tick()
        assert ctx.get(bench.node.unit.send_anywhere)
        await bench.control(ctx, "run")
        await bench.wait_state(ctx, TileState.TRAPPED)
        assert ctx.get(bench.node.control.cause) == Cause.SEND_DENIED
        model.stopped(Cause.SEND_DENIED, program.symbols["bad"])
        received = [await bench.host_receive(ctx), await bench.host_receive(ctx)]
        assert received == [(0, *down[1:]) for down in model.downs], received
        assert await bench.host_receive(ctx, limit=300) is None

    run_node(scenario, core, separate_staging)


#: Two timed receives on an empty mailbox (the second one longer than the watchdog period), then a hang.
TIMED_RECEIVES_THEN_HANG = """
    li a1, 1
    msg.recvt a0, a1
    li a1, 1500
    msg.recvt a0, a1
hang:
    j hang
"""


@pytest.mark.parametrize(("core", "separate_staging"), NODE_BUILDS)
def test_tile_node_recvt_shares_the_watchdog_counter(core: str, separate_staging: bool) -> None:
    """RECVT times out on the cycle a message unit with its own timer does (a reference unit fed the same
    instructions), however long past the watchdog period it waits; the watchdog then expires in the model's
    window after the last RECVT."""
    model = TileNodeModel(num_tiles=TILES)
    model.write_config(ConfigRegister.WATCHDOG, 1000)
    program = assemble(TIMED_RECEIVES_THEN_HANG)
    bench = NodeBench(core, separate_staging)
    reference = MessageUnit(address=0, num_tiles=TILES, phase_at_reset=phase_at_reset(0))  # off the ring
    bench.top.submodules.reference = reference
    core_port = bench.node.tile.message
    bench.top.d.comb += [getattr(reference.core, name).eq(getattr(core_port, name))
                         for name in ("valid", "funct3", "funct7", "rs1", "rs2")]

    async def testbench(ctx) -> None:
        await bench.load(ctx, program.words())
        await bench.control(ctx, "", 1000, ConfigRegister.WATCHDOG)
        await bench.control(ctx, "run")
        timeouts = 0
        last_ready = 0
        for cycle in range(6000):
            if ctx.get(bench.node.control.state) == TileState.TRAPPED:
                break
            ready = ctx.get(core_port.valid) and ctx.get(core_port.ready)
            assert ready == bool(ctx.get(core_port.valid) and ctx.get(reference.core.ready)), cycle
            if ready:
                assert not ctx.get(core_port.fault) and ctx.get(core_port.result) == 0
                timeouts += 1
                last_ready = cycle
            await ctx.tick()
        else:
            raise AssertionError("the watchdog never expired")
        assert timeouts == 2
        earliest, latest = model.watchdog_window()
        assert earliest <= cycle - last_ready <= latest + 2, (cycle - last_ready, earliest, latest)
        assert ctx.get(bench.node.control.cause) == Cause.WATCHDOG
        assert ctx.get(bench.node.control.pc) == program.symbols["hang"]

    sim = Simulator(bench.top)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
