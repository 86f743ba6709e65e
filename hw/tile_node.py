"""One tile's node on the ring: Tile + MessageUnit + fault reporter + watchdog + the host's per-tile registers."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.core import check_mem_bytes
from tessera.hw.down_message import DETAIL_BITS
from tessera.hw.fault_reporter import FaultReporter
from tessera.hw.message_unit import MessageUnit
from tessera.hw.noc_layouts import HOST_NODE, NODE_BITS, Flit, MessageFunct3
from tessera.hw.tile import Tile
from tessera.hw.tile_fanout import TilePortSignature
from tessera.os.protocol import ConfigRegister

#: custom-0 funct3 of `msg.fault` (funct7 = 0): trap with Cause.ASSERTION, rs1 = the reason (docs/network.md).
FAULT_FUNCT3 = MessageFunct3.FAULT
#: The watchdog counts in steps of 2**WATCHDOG_SHIFT cycles (a 16-bit count then covers 2**24 cycles).
WATCHDOG_SHIFT = 8
WATCHDOG_BITS = 16


class TileNode(wiring.Component):
    """A tile and everything that makes it a supervised node of the network.

    Parameters: `tile_id` (its address), `num_tiles`, `mem_bytes`, `phase_at_reset` (of its ring position,
    `tessera.hw.network.phase_at_reset`), `mailbox_depth`, `retry_delay`, `counter_bits` (width of the
    message counters), `retired_bits` (width of the retired-instruction counter), `core`, and
    `shared_counter_stream` (bit core only: the tile's counter-stream inputs are driven by the chip's one stream).

    Ports: `control` (the host's: `TilePortSignature` as TileFanout drives it: debug port, run/halt/reset_pc,
    state/cause/pc, configuration writes), `ring_in`/`ring_out` (the ring), `cycle` (the chip counter),
    `messages_in` (receives that opened a message), `messages_out` (sends the network took), both counted
    for the tile's own instructions only, and `retired` (instructions the core retired). All three wrap and
    restart from 0 at `reset_pc`: they count the current run of the tile's program, as the program itself
    would (a restarted service's counts start again with it).

    Behaviour (docs/architecture.md):
    - Configuration registers: PERMISSIONS (the unit's send set, reset: none), SUPERVISOR (node that gets the DOWN
      messages; reset: none, values that are not a node address mean none), WATCHDOG (cycles, 0 = off; kept in
      steps of 256 cycles, rounded up, saturating at 2**24 - 256).
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
    ) -> None:
        addr_bits = check_mem_bytes(mem_bytes)
        self._tile_id = tile_id
        self._num_tiles = num_tiles
        self._tile = Tile(
            mem_bytes=mem_bytes,
            tile_id=tile_id,
            has_message_unit=True,
            core=core,
            shared_counter_stream=shared_counter_stream,
        )
        self._unit = MessageUnit(
            address=tile_id,
            num_tiles=num_tiles,
            phase_at_reset=phase_at_reset,
            depth=mailbox_depth,
            retry_delay=retry_delay,
        )
        super().__init__(
            {
                "control": In(TilePortSignature(addr_bits)),
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                "cycle": In(64),
                "messages_in": Out(counter_bits),
                "messages_out": Out(counter_bits),
                "retired": Out(retired_bits),
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
        for name in ("addr", "re", "we", "wdata", "wmask"):
            m.d.comb += getattr(tile.debug, name).eq(getattr(control.debug, name))
        m.d.comb += [
            control.debug.rdata.eq(tile.debug.rdata),
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

        data = control.config_data
        permitted = Signal(self._num_tiles + 1)
        supervisor = Signal(NODE_BITS)
        supervisor_valid = Signal()
        watchdog_period = Signal(WATCHDOG_BITS)
        with m.If(config_write(ConfigRegister.PERMISSIONS)):
            m.d.sync += permitted.eq(data)
        with m.If(config_write(ConfigRegister.SUPERVISOR)):
            is_node = (data == HOST_NODE) | (data < self._num_tiles)
            m.d.sync += [supervisor.eq(data), supervisor_valid.eq(is_node)]
        with m.If(config_write(ConfigRegister.WATCHDOG)):
            whole = data[WATCHDOG_SHIFT:] + (data[:WATCHDOG_SHIFT] != 0)
            m.d.sync += watchdog_period.eq(Mux(whole >> WATCHDOG_BITS, (1 << WATCHDOG_BITS) - 1, whole))

        # The unit's permission register follows `permitted`, widened by the supervisor during a DOWN report.
        supervisor_bit = Signal(self._num_tiles + 1)
        for index in range(self._num_tiles):
            m.d.comb += supervisor_bit[index].eq(supervisor == index)
        m.d.comb += [
            supervisor_bit[self._num_tiles].eq(supervisor == HOST_NODE),
            unit.permissions.we.eq(config_write(ConfigRegister.PERMISSIONS) | reporter.widen | reporter.restore),
            unit.permissions.data.eq(
                Mux(config_write(ConfigRegister.PERMISSIONS), data, permitted | Mux(reporter.widen, supervisor_bit, 0))
            ),
        ]

        # ---- the core's message port: msg.fault here, the rest to the unit unless the reporter owns it ----------
        core = tile.message
        unit_port = unit.core
        is_fault_op = core.funct3 == FAULT_FUNCT3
        detail = Signal(DETAIL_BITS)
        with m.If(core.valid & is_fault_op):
            m.d.sync += detail.eq(core.rs1)
        with m.If(reporter.busy):
            m.d.comb += [
                unit_port.valid.eq(reporter.net.valid),
                unit_port.funct3.eq(reporter.net.funct3),
                unit_port.funct7.eq(reporter.net.funct7),
                unit_port.rs1.eq(reporter.net.rs1),
                unit_port.rs2.eq(reporter.net.rs2),
                reporter.net.ready.eq(unit_port.ready),
                reporter.net.fault.eq(unit_port.fault),
                reporter.net.cause.eq(unit_port.cause),
                reporter.net.result.eq(unit_port.result),
            ]
        with m.Else():
            m.d.comb += [
                unit_port.valid.eq(core.valid & ~is_fault_op),
                unit_port.funct3.eq(core.funct3),
                unit_port.funct7.eq(core.funct7),
                unit_port.rs1.eq(core.rs1),
                unit_port.rs2.eq(core.rs2),
            ]
        m.d.comb += [
            core.ready.eq(Mux(is_fault_op, core.valid, unit_port.ready & ~reporter.busy)),
            core.fault.eq(is_fault_op | unit_port.fault),
            core.cause.eq(Mux(is_fault_op, Mux(core.funct7 == 0, Cause.ASSERTION, Cause.ILLEGAL_INSN), unit_port.cause)),
            core.result.eq(unit_port.result),
        ]

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
        served = core.valid & core.ready & ~core.fault
        with m.If(control.reset_pc):
            m.d.sync += [self.messages_in.eq(0), self.messages_out.eq(0), self.retired.eq(0)]
        with m.Else():
            with m.If(served & (core.funct3 == MessageFunct3.RECV) & (core.result != 0)):
                m.d.sync += self.messages_in.eq(self.messages_in + 1)
            with m.If(served & (core.funct3 == MessageFunct3.SEND) & core.result[0]):
                m.d.sync += self.messages_out.eq(self.messages_out + 1)
            with m.If(tile.retired):
                m.d.sync += self.retired.eq(self.retired + 1)

        # ---- watchdog ------------------------------------------------------------------------------------------
        watchdog_count = Signal(WATCHDOG_BITS)
        active = (tile.state == TileState.RUNNING) | (tile.state == TileState.SLEEPING)
        waiting_to_receive = core.valid & (core.funct3 == MessageFunct3.RECV)
        kicked = ~active | waiting_to_receive | (core.valid & core.ready) | config_write(ConfigRegister.WATCHDOG)
        step_now = self.cycle[:WATCHDOG_SHIFT] == (1 << WATCHDOG_SHIFT) - 1
        expired = Signal()
        m.d.comb += expired.eq(~kicked & step_now & (watchdog_period != 0) & (watchdog_count + 1 == watchdog_period))
        with m.If(kicked | expired):
            m.d.sync += watchdog_count.eq(0)
        with m.Elif(step_now):
            m.d.sync += watchdog_count.eq(watchdog_count + 1)
        m.d.comb += [tile.fault_in_valid.eq(expired), tile.fault_in_cause.eq(Cause.WATCHDOG)]
        return m


__all__ = ["FAULT_FUNCT3", "TileNode"]
