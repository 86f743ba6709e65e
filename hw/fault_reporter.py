"""The fault reporter: turns a tile's stop into a DOWN message to its supervisor, sent by the node's message unit."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.down_message import DETAIL_BITS, DOWN_TAG
from tessera.hw.message_unit import MessagePortSignature
from tessera.hw.noc_layouts import NODE_BITS, MessageOp


class FaultReporter(wiring.Component):
    """Watches the core's state; when it enters TRAPPED with any cause but BREAKPOINT, sends DOWN(cause, pc, detail).

    Ports: `state`, `cause`, `pc` (the core's status), `detail` (msg.fault's reason, captured by the node),
    `supervisor` + `supervisor_valid` (where DOWN goes; no message when not valid), `net` (drives the message
    unit's core port exactly as a core does), `busy` (the reporter owns `net`: the node holds the core's own
    message instructions off meanwhile), `discard` (pulse: drop the words the tile had staged, so they do not
    become part of the DOWN message), `widen` / `restore` (pulses: the node adds the supervisor to the unit's
    send permissions for the DOWN message and puts the tile's own set back afterwards).

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
                "net": Out(MessagePortSignature),
                "busy": Out(1),
                "discard": Out(1),
                "widen": Out(1),
                "restore": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        net = self.net
        taken = Signal()  # this stay in TRAPPED has been looked at already
        cause = Signal(5)
        pc = Signal(32)
        detail = Signal(DETAIL_BITS)
        trapped = self.state == TileState.TRAPPED
        with m.If(~trapped):
            m.d.sync += taken.eq(0)

        m.d.comb += [net.rs2.eq(DOWN_TAG), self.busy.eq(1)]

        def operation(op: MessageOp, operand, then: str) -> None:
            m.d.comb += [net.valid.eq(1), net.funct3.eq(op.funct3), net.funct7.eq(op.funct7), net.rs1.eq(operand)]
            with m.If(net.ready & net.fault):
                m.next = "RESTORE"
            with m.Elif(net.ready):
                m.next = then

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.busy.eq(0)
                with m.If(trapped & ~taken):
                    m.d.sync += [
                        taken.eq(1),
                        cause.eq(self.cause),
                        pc.eq(self.pc),
                        detail.eq(Mux(self.cause == Cause.ASSERTION, self.detail, 0)),
                    ]
                    with m.If(self.supervisor_valid & (self.cause != Cause.BREAKPOINT)):
                        m.next = "OPEN"
            with m.State("OPEN"):
                m.d.comb += [self.discard.eq(1), self.widen.eq(1)]
                m.next = "PUT_CAUSE"
            with m.State("PUT_CAUSE"):
                operation(MessageOp.PUT, cause, "PUT_PC")
            with m.State("PUT_PC"):
                operation(MessageOp.PUT, pc, "PUT_DETAIL")
            with m.State("PUT_DETAIL"):
                operation(MessageOp.PUT, detail, "SEND")
            with m.State("SEND"):
                operation(MessageOp.SEND, self.supervisor, "RESTORE")
            with m.State("RESTORE"):
                m.d.comb += self.restore.eq(1)
                m.next = "IDLE"
        return m
