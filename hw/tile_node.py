"""One tile's node on the ring: Tile + MessageUnit + fault reporter + watchdog + the host's per-tile registers."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.down_message import DETAIL_BITS
from tessera.hw.fault_reporter import FaultReporter
from tessera.hw.message_unit import MessageUnit
from tessera.hw.noc_layouts import HOST_NODE, NODE_BITS, TIMEOUT_BITS, Flit, MessageFunct3, ReceivedHeader
from tessera.hw.tile import Tile
from tessera.hw.tile_fanout import TilePortSignature
from tessera.os.protocol import ConfigRegister

#: custom-0 funct3 of `msg.fault` (funct7 = 0): trap with Cause.ASSERTION, rs1 = the reason (docs/network.md).
FAULT_FUNCT3 = MessageFunct3.FAULT
#: The watchdog counts in steps of 2**WATCHDOG_SHIFT cycles (a 16-bit count then covers 2**24 cycles).
WATCHDOG_SHIFT = 8
WATCHDOG_BITS = 16


#: What a tile node derives from the host's configuration word (`config_data`) and the chip counter, the same for
#: every node of a chip: a chip computes it once (`decode_node_inputs`) for nodes built with `shared_decode=True`.
NodeInputs = data.StructLayout(
    {
        "supervisor_valid": 1,  # SUPERVISOR: the word is a node address (the host, or a tile below num_tiles)
        "watchdog_saturated": 1,  # WATCHDOG: the word rounds up to 2**(WATCHDOG_SHIFT + WATCHDOG_BITS) or more
        "watchdog_round": 1,  # ... it has a remainder below one step (and is not saturated): one step more
        "watchdog_on": 1,  # ... it is not 0
        "watchdog_step": 1,  # the chip counter's low WATCHDOG_SHIFT bits are all ones: the watchdog steps
    }
)


def decode_node_inputs(m: Module, word: Value, cycle: Value, num_tiles: int) -> Value:
    """Add to `m` the decoding of `NodeInputs` from the configuration word and the chip counter; return it."""
    decoded = Signal(NodeInputs)
    below_step = word[:WATCHDOG_SHIFT] != 0
    whole_steps = word[WATCHDOG_SHIFT : WATCHDOG_SHIFT + WATCHDOG_BITS]
    above_steps = word[WATCHDOG_SHIFT + WATCHDOG_BITS :] != 0
    small = ~above_steps & (whole_steps == 0)  # word < 2**WATCHDOG_SHIFT
    node = word[:NODE_BITS]
    is_node = (node == HOST_NODE) | Cat(node == tile for tile in range(num_tiles)).any()
    saturated = above_steps | ((whole_steps == (1 << WATCHDOG_BITS) - 1) & below_step)
    m.d.comb += [
        decoded.supervisor_valid.eq(small & ~word[NODE_BITS] & is_node),
        decoded.watchdog_saturated.eq(saturated),
        decoded.watchdog_round.eq(below_step & ~saturated),
        decoded.watchdog_on.eq(below_step | ~small),
        decoded.watchdog_step.eq(cycle[:WATCHDOG_SHIFT].all()),
    ]
    return decoded


class TileNode(wiring.Component):
    """A tile and everything that makes it a supervised node of the network.

    Parameters: `tile_id` (its address), `num_tiles`, `mem_bytes`, `phase_at_reset` (of its ring position,
    `tessera.hw.network.phase_at_reset`), `mailbox_depth`, `retry_delay`, `counter_bits` (width of the
    message counters), `retired_bits` (width of the retired-instruction counter), `core`,
    `shared_counter_stream` (bit core only: the tile's counter-stream inputs are driven by the chip's one stream)
    `counters` (False: no `messages_in` / `messages_out` / `retired` ports and no counter logic),
    `shared_decode` (True: the node takes `NodeInputs` on its `decoded` input, which the chip decodes once for all
    nodes with `decode_node_inputs`, instead of decoding its own) and `separate_staging` (False: the mailbox in one
    block RAM, see `tessera.hw.mailbox.Mailbox`) and `outside_memory` (the tile's memory is not inside it: the
    node's `memory` port, `Out(MemoryBusSignature(..., waits=True))`, reaches the tile's share of a
    `tessera.hw.spram_bank.SpramBank`; bit core only).

    Ports: `control` (the host's: `TilePortSignature` as TileFanout drives it: debug port, run/halt/reset_pc,
    state/cause/pc, configuration writes), `ring_in`/`ring_out` (the ring), `cycle` (the chip counter),
    `messages_in` (receives that opened a message), `messages_out` (sends the network took), both counted
    for the tile's own instructions only, and `retired` (instructions the core retired). All three wrap and
    restart from 0 at `reset_pc`: they count the current run of the tile's program, as the program itself
    would (a restarted service's counts start again with it).

    Behaviour (docs/architecture.md):
    - Configuration registers: PERMISSIONS (the unit's send set, reset: none), SUPERVISOR (node that gets the DOWN
      messages; reset: none, values that are not a node address mean none), WATCHDOG (cycles, 0 = off; kept in
      steps of 256 cycles, rounded up, saturating at 2**24 - 256; reset: off).
    - `msg.fault` (custom-0 funct3 7, funct7 0) is answered here: trap with ASSERTION; the low 8 bits of rs1 go
      into the DOWN message. Other funct7 with funct3 7 are ILLEGAL_INSN.
    - The watchdog counts while the tile is RUNNING or SLEEPING, restarts at every completed message instruction
      and while the tile waits in a receive (an idle service is healthy), and on expiry traps the tile with
      WATCHDOG at its current pc.
    - `reset_pc` restarts the tile and drops the words it had staged for sending; the message unit (address,
      mailbox, message in flight, ring stop) is never reset, so queued messages stay and the ring keeps moving.
    """

    def __init__(
        self,
        *,
        tile_id: int,
        num_tiles: int,
        mem_bytes: int,
        phase_at_reset: int,
        mailbox_depth: int = 8,
        retry_delay: int = 32,
        counter_bits: int = 16,
        retired_bits: int = 32,
        core: str = "parallel",
        shared_counter_stream: bool = False,
        counters: bool = True,
        shared_decode: bool = False,
        separate_staging: bool = True,
        outside_memory: bool = False,
    ) -> None:
        self._tile_id = tile_id
        self._num_tiles = num_tiles
        self._counters = counters
        self._shared_decode = shared_decode
        self._tile = Tile(
            mem_bytes=mem_bytes,
            tile_id=tile_id,
            has_message_unit=True,
            core=core,
            shared_counter_stream=shared_counter_stream,
            outside_memory=outside_memory,
        )
        self._unit = MessageUnit(
            address=tile_id,
            num_tiles=num_tiles,
            phase_at_reset=phase_at_reset,
            depth=mailbox_depth,
            retry_delay=retry_delay,
            shared_timer=True,  # RECVT times with the watchdog's counter (elaborate)
            separate_staging=separate_staging,
        )
        counter_members = (
            {"messages_in": Out(counter_bits), "messages_out": Out(counter_bits), "retired": Out(retired_bits)}
            if counters
            else {}
        )
        super().__init__(
            {
                "control": In(TilePortSignature()),
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                "cycle": In(64),
                **counter_members,
                **({"decoded": In(NodeInputs)} if shared_decode else {}),
                **({"memory": Out(self._tile.signature.members["memory"].signature)} if outside_memory else {}),
            }
        )

    @property
    def tile(self) -> Tile:
        return self._tile

    @property
    def unit(self) -> MessageUnit:
        return self._unit

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.tile = tile = self._tile
        m.submodules.unit = unit = self._unit
        m.submodules.reporter = reporter = FaultReporter()
        control = self.control

        # ---- host control and status ---------------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(control.debug), tile.debug)
        if "memory" in self.signature.members:
            wiring.connect(m, tile.memory, wiring.flipped(self.memory))
        m.d.comb += [
            tile.run.eq(control.run),
            tile.halt.eq(control.halt),
            tile.reset_pc.eq(control.reset_pc),
            tile.cycle.eq(self.cycle),
            control.state.eq(tile.state),
            control.cause.eq(tile.cause),
            control.pc.eq(tile.pc),
            unit.ring_in.eq(self.ring_in),
            self.ring_out.eq(unit.ring_out),
        ]

        # ---- configuration registers ---------------------------------------------------------------------------
        def config_write(register: ConfigRegister):
            return control.config_we & (control.config_index == register)

        word = control.config_data
        decoded = self.decoded if self._shared_decode else decode_node_inputs(m, word, self.cycle, self._num_tiles)
        supervisor = Signal(NODE_BITS, reset_less=True)  # read only while `supervisor_valid`
        supervisor_valid = Signal()
        with m.If(config_write(ConfigRegister.SUPERVISOR)):
            m.d.sync += [supervisor.eq(word), supervisor_valid.eq(decoded.supervisor_valid)]

        # WATCHDOG = `steps` whole steps of 2**WATCHDOG_SHIFT cycles (rounded up, saturating), kept without an
        # adder as steps = `period_high` + `period_round` (the written word's step count and whether it had a
        # remainder); `watchdog_on` = the word was not 0.
        period_high = Signal(WATCHDOG_BITS, reset_less=True)  # read only while `watchdog_on`
        period_round = Signal(reset_less=True)
        watchdog_on = Signal()
        watchdog_write = config_write(ConfigRegister.WATCHDOG)
        with m.If(watchdog_write):
            whole_steps = word[WATCHDOG_SHIFT : WATCHDOG_SHIFT + WATCHDOG_BITS]
            m.d.sync += [
                period_high.eq(Mux(decoded.watchdog_saturated, (1 << WATCHDOG_BITS) - 1, whole_steps)),
                period_round.eq(decoded.watchdog_round),
                watchdog_on.eq(decoded.watchdog_on),
            ]

        # The unit keeps the one copy of the permission set. A DOWN report needs no change to it: while the reporter
        # owns the unit's port (the core's own instructions wait), its SEND may reach any node, and its only SEND
        # goes to the supervisor, a node address.
        m.d.comb += [
            unit.permissions.we.eq(config_write(ConfigRegister.PERMISSIONS)),
            unit.permissions.data.eq(word),
            unit.send_anywhere.eq(reporter.busy),
        ]

        # ---- the core's message port: msg.fault here, the rest to the unit through the reporter -----------------
        core = tile.message
        port = reporter.core
        is_fault_op = core.funct3 == FAULT_FUNCT3
        # The last msg.fault's reason: the reporter sends it for an ASSERTION stop, which only msg.fault causes.
        detail = Signal(DETAIL_BITS, reset_less=True)  # read only for an ASSERTION stop, after a msg.fault wrote it
        with m.If(core.valid & is_fault_op & (core.funct7 == 0)):
            m.d.sync += detail.eq(core.rs1)
        m.d.comb += [
            port.valid.eq(core.valid & ~is_fault_op),
            port.funct3.eq(core.funct3),
            port.funct7.eq(core.funct7),
            port.rs1.eq(core.rs1),
            port.rs2.eq(core.rs2),
            core.ready.eq(Mux(is_fault_op, core.valid, port.ready)),
            core.fault.eq(is_fault_op | port.fault),
            core.cause.eq(Mux(is_fault_op, Mux(core.funct7 == 0, Cause.ASSERTION, Cause.ILLEGAL_INSN), port.cause)),
            core.result.eq(port.result),
        ]
        wiring.connect(m, reporter.net, unit.core)

        # ---- fault reporting -----------------------------------------------------------------------------------
        m.d.comb += [
            reporter.state.eq(tile.state),
            reporter.cause.eq(tile.cause),
            reporter.pc.eq(tile.pc),
            reporter.detail.eq(detail),
            reporter.supervisor.eq(supervisor),
            reporter.supervisor_valid.eq(supervisor_valid),
            unit.discard.eq(reporter.discard | (control.reset_pc & ~reporter.busy)),
        ]

        # ---- counters of the tile's own work since its last reset_pc ------------------------------------------
        if self._counters:
            served = core.valid & core.ready & ~core.fault
            length = ReceivedHeader["len"]  # a receive's header has len >= 1 exactly when it opened a message
            opened = core.result[length.offset : length.offset + length.width] != 0
            # Cleared through the flip-flops' own reset input (chip reset or reset_pc): no clearing multiplexers.
            counts = {}
            for port in (self.messages_in, self.messages_out, self.retired):
                counts[port.name] = count = Signal(len(port), name=f"{port.name}_count", reset_less=True)
                m.d.comb += port.eq(count)
            messages_in, messages_out, retired = counts.values()
            with m.If(control.reset_pc | ResetSignal()):
                m.d.sync += [messages_in.eq(0), messages_out.eq(0), retired.eq(0)]
            with m.Else():
                with m.If(served & (core.funct3 == MessageFunct3.RECV) & opened):
                    m.d.sync += messages_in.eq(messages_in + 1)
                with m.If(served & (core.funct3 == MessageFunct3.SEND) & core.result[0]):
                    m.d.sync += messages_out.eq(messages_out + 1)
                with m.If(tile.retired):
                    m.d.sync += retired.eq(retired + 1)

        # ---- watchdog ------------------------------------------------------------------------------------------
        # The count of steps (the chip counter's low bits all ones) starts at 1 - round, so that expiry is at the step
        # where it reaches `period_high` (steps = high + round, no adder). It is kept inverted, as `count_left` =
        # ~count counting down from 0xFFFE + round (all bits but bit 0 set: synchronous sets, no load multiplexer),
        # so that count >= period_high is a bare carry chain: count_left + period_high does not carry out.
        # A waiting receive holds the watchdog idle, so the same counter is RECVT's timer then (the unit's `timer`):
        # while the unit is `timing` it counts every cycle, and it restarts at the unit's TIMER_RESTART
        # (all ones but bit 0: the watchdog's restart value with round 0) before.
        count_left = Signal(max(WATCHDOG_BITS, TIMEOUT_BITS), reset_less=True)  # loaded whenever the tile idles
        active = (tile.state == TileState.RUNNING) | (tile.state == TileState.SLEEPING)
        waiting_to_receive = core.valid & (core.funct3 == MessageFunct3.RECV)
        # A completed message instruction restarts the count one cycle late, from a flip-flop: `ready` is a long path
        message_done = Signal()
        m.d.sync += message_done.eq(core.valid & core.ready)
        kicked = ~active | waiting_to_receive | message_done | watchdog_write
        step_now = decoded.watchdog_step
        reached = ~(count_left[:WATCHDOG_BITS] + period_high)[WATCHDOG_BITS]
        expired = Signal()
        m.d.comb += expired.eq(~kicked & step_now & watchdog_on & reached)
        m.d.comb += unit.timer.eq(count_left)
        with m.If(unit.timing):
            m.d.sync += count_left.eq(count_left - 1)
        with m.Elif(kicked):
            starts_rounded = Mux(watchdog_write, decoded.watchdog_round, period_round) & ~waiting_to_receive
            ones = len(count_left) - 1
            m.d.sync += count_left.eq(Cat(starts_rounded, Const((1 << ones) - 1, ones)))
        with m.Elif(step_now):
            m.d.sync += count_left.eq(count_left - 1)
        m.d.comb += [tile.fault_in_valid.eq(expired), tile.fault_in_cause.eq(Cause.WATCHDOG)]
        return m


__all__ = ["FAULT_FUNCT3", "NodeInputs", "TileNode", "decode_node_inputs"]
