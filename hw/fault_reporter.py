"""The fault reporter: turns a tile's stop into a DOWN message to its supervisor, sent by the node's message unit."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.down_message import DETAIL_BITS, DOWN_TAG
from tessera.hw.message_unit import MessagePortSignature
from tessera.hw.noc_layouts import NODE_BITS, MessageFunct3


class FaultReporter(wiring.Component):
    """Watches the core's state; when it enters TRAPPED with any cause but BREAKPOINT, sends DOWN(cause, pc, detail).

    Ports: `state`, `cause`, `pc` (the core's status), `detail` (msg.fault's reason as the node keeps it: 0 unless
    the stop is an ASSERTION), `supervisor` + `supervisor_valid` (where DOWN goes; no message when not valid),
    `core` (the core's message requests, msg.fault already taken out by the node), `net` (to the message unit's
    core port), `busy` (the reporter owns `net`), `discard` (pulse: drop the words the tile had staged, so they do
    not become part of the DOWN message), `widen` / `restore` (pulses: the node opens the unit's send
    permissions for the DOWN message, sent to the supervisor only, and puts the tile's own set back afterwards).

    While idle, `net` carries the core's requests and the unit's answers go back unchanged. While busy, the
    reporter drives `net` exactly as a core does and the core's requests wait (`core.ready` = 0).

    Contract: each entry into TRAPPED is reported at most once (a stop is taken while the reporter is idle; a
    second stop during a report is taken when the first is sent, if the tile is still TRAPPED then). The core is
    stopped while the message is built, so the report needs no core cycles. If the unit refuses an operation
    (it cannot: the staging is emptied first and the supervisor is permitted) the report is abandoned, never
    retried forever.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "state": In(2),
                "cause": In(5),
                "pc": In(32),
                "detail": In(DETAIL_BITS),
                "supervisor": In(NODE_BITS),
                "supervisor_valid": In(1),
                "core": In(MessagePortSignature),
                "net": Out(MessagePortSignature),
                "busy": Out(1),
                "discard": Out(1),
                "widen": Out(1),
                "restore": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        net, core = self.net, self.core
        taken = Signal()  # this stay in TRAPPED has been looked at already
        # The stop as it was taken (read only during the report that follows).
        cause = Signal(5, reset_less=True)
        pc = Signal(32, reset_less=True)
        detail = Signal(DETAIL_BITS, reset_less=True)
        trapped = self.state == TileState.TRAPPED
        with m.If(~trapped):
            m.d.sync += taken.eq(0)

        # The report's steps, one-hot (each drives its own operand bits directly: no decoder).
        opening, put_cause, put_pc, put_detail, send, restoring = steps = [Signal(name=n) for n in (
            "opening", "put_cause", "put_pc", "put_detail", "send", "restoring")]
        busy = Signal()  # = opening | operating | restoring, kept as a flip-flop of its own (no 6-input OR)
        operating = busy & ~opening & ~restoring  # = put_cause | put_pc | put_detail | send
        m.d.comb += self.busy.eq(busy)
        with m.If(restoring):
            m.d.sync += busy.eq(0)
        m.d.comb += [self.discard.eq(opening), self.widen.eq(opening), self.restore.eq(restoring)]
        advance = Signal()
        m.d.comb += advance.eq(opening | (operating & net.ready))
        with m.If(advance):
            for earlier, later in zip(steps, steps[1:]):
                m.d.sync += later.eq(earlier)
            m.d.sync += opening.eq(0)
        with m.If(restoring | (operating & net.ready & net.fault)):
            m.d.sync += [put_cause.eq(0), put_pc.eq(0), put_detail.eq(0), send.eq(0), restoring.eq(0)]
        with m.If(operating & net.ready & net.fault):
            m.d.sync += restoring.eq(1)

        with m.If(~busy & trapped & ~taken):
            m.d.sync += [taken.eq(1), cause.eq(self.cause), pc.eq(self.pc), detail.eq(self.detail)]
            with m.If(self.supervisor_valid & (self.cause != Cause.BREAKPOINT)):
                m.d.sync += [opening.eq(1), busy.eq(1)]

        # The unit's port: the core's requests, or the report's operations (PUT cause, pc, detail; SEND).
        operand = (
            Mux(put_cause, cause, 0)
            | Mux(put_pc, pc, 0)
            | Mux(put_detail, detail, 0)
            | Mux(send, self.supervisor, 0)
        )
        m.d.comb += [
            net.valid.eq(Mux(busy, operating, core.valid)),
            net.funct3.eq(Mux(busy, Mux(send, MessageFunct3.SEND, MessageFunct3.PUT), core.funct3)),
            net.funct7.eq(Mux(busy, 0, core.funct7)),
            net.rs1.eq(Mux(busy, operand, core.rs1)),
            net.rs2.eq(Mux(busy, DOWN_TAG, core.rs2)),
            core.ready.eq(net.ready & ~busy),
            core.result.eq(net.result),
            core.fault.eq(net.fault),
            core.cause.eq(net.cause),
        ]
        return m
