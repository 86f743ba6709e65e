"""The fault reporter: turns a tile's stop into a DOWN message to its supervisor, sent by the node's message unit."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.down_message import DETAIL_BITS, DOWN_TAG
from tessera.hw.message_unit import MessagePortSignature
from tessera.hw.noc_layouts import NODE_BITS, MessageFunct3


class FaultReporter(wiring.Component):
    """Watches the core's state; when it enters TRAPPED with any cause but BREAKPOINT, sends DOWN(cause, pc, detail).

    Ports: `state`, `cause`, `pc` (the core's status), `detail` (the reason of the tile's last msg.fault, sent for
    an ASSERTION stop; 0 is sent for every other cause), `supervisor` + `supervisor_valid` (where DOWN goes; no
    message when not valid), `core` (the core's message requests, msg.fault already taken out by the node), `net`
    (to the message unit's core port), `busy` (the reporter owns `net`; the node lets the unit's SEND reach any node
    meanwhile, as the report's only SEND goes to the supervisor), `discard` (drop the words staged in the unit: at
    the start of a report, so the tile's words do not become part of the DOWN message, and while an abandoned
    report finishes its operation, so the report's words do not become part of the tile's next message).

    While idle, `net` carries the core's requests and the unit's answers go back unchanged. While busy, the
    reporter drives `net` exactly as a core does (valid held until ready: PUT cause, PUT pc, PUT detail, SEND to the
    supervisor with DOWN_TAG) and the core's requests wait (`core.ready` = 0).

    The words are read live from `cause`, `pc` and `detail`, which do not change while the core stays TRAPPED (it
    leaves only on the host's `run` or `reset_pc`). Each operation is taken as part of the report only if the tile
    was TRAPPED, in the same stay, through the cycle the unit completed it. Contract: each entry into TRAPPED is
    reported at most once. A stop is taken while the reporter is idle; if the tile leaves TRAPPED before the SEND
    has started, the report is abandoned: the operation under way is completed (valid stays up until ready), the
    staged words are dropped and nothing is sent, so a stop that the host ends before its DOWN was sent may go
    unreported (a SEND already under way completes: its words are the stop's). A stop that begins during a report
    is taken when the reporter is idle again, if the tile is still TRAPPED then. The core is stopped while
    the message is built, so the report needs no core cycles. If the unit refuses an operation (it cannot: the
    staging is emptied first and the supervisor may be reached) the report is abandoned, never retried forever.
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
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        net, core = self.net, self.core
        # The report's operations, one-hot: each selects its own operand bits (no decoder); none set = idle.
        put_cause, put_pc, put_detail, send = steps = [
            Signal(name=name) for name in ("put_cause", "put_pc", "put_detail", "send")
        ]
        busy = Cat(*steps).any()
        m.d.comb += self.busy.eq(busy)
        trapped = self.state == TileState.TRAPPED
        # `taken`: this stay in TRAPPED has been looked at (set when the reporter looks, cleared once it ends), so a
        # report under way is still about the current stay exactly while `trapped & taken`.
        taken = Signal()
        m.d.sync += taken.eq(trapped & (taken | ~busy))
        staying = trapped & taken
        start = ~busy & trapped & ~taken & self.supervisor_valid & (self.cause != Cause.BREAKPOINT)

        # The end of an operation (net.ready) moves to the next one, or ends the report after the SEND, after a
        # refusal, or when the stay has ended. (While idle, net.ready answers the core and the steps stay clear.)
        goes_on = staying & ~net.fault
        with m.If(net.ready):
            m.d.sync += [
                put_cause.eq(0),
                put_pc.eq(put_cause & goes_on),
                put_detail.eq(put_pc & goes_on),
                send.eq(put_detail & goes_on),
            ]
        with m.If(start):
            m.d.sync += put_cause.eq(1)
        m.d.comb += self.discard.eq(start | (busy & ~send & ~staying))

        # The unit's port: the core's requests, or the report's operations. Only the pc word has bits above the
        # low byte, so most operand bits choose between two sources.
        detail = Mux(self.cause == Cause.ASSERTION, self.detail, 0)
        operand = (
            Mux(put_cause, self.cause, 0)
            | Mux(put_pc, self.pc, 0)
            | Mux(put_detail, detail, 0)
            | Mux(send, self.supervisor, 0)
        )
        assert MessageFunct3.PUT == 0 and MessageFunct3.SEND == 1
        m.d.comb += [
            net.valid.eq(busy | core.valid),
            net.funct3.eq(Mux(busy, send, core.funct3)),
            net.funct7.eq(Mux(busy, 0, core.funct7)),
            net.rs1.eq(Mux(busy, operand, core.rs1)),
            net.rs2.eq(Mux(busy, DOWN_TAG, core.rs2)),
            core.ready.eq(net.ready & ~busy),
            core.result.eq(net.result),
            core.fault.eq(net.fault),
            core.cause.eq(net.cause),
        ]
        return m
