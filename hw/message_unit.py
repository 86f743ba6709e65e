"""The message unit: the tile core's custom-0 instructions on top of a mailbox and a ring stop."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause
from tessera.hw.mailbox import Mailbox, ReadOp
from tessera.hw.noc_layouts import (
    HOST_NODE,
    MAX_TILES,
    MAX_WORDS,
    NODE_BITS,
    TIMEOUT_BITS,
    Flit,
    MessageFunct3,
    MessageOp,
    MessageStatus,
    RouteHeader,
)
from tessera.hw.router import Router

#: The core's message port, seen from the core (the unit uses it flipped). The core holds valid with stable
#: operands until ready; on ready it takes result (or traps with cause when fault = 1).
MessagePortSignature = wiring.Signature(
    {
        "valid": Out(1),
        "funct3": Out(3),
        "funct7": Out(7),
        "rs1": Out(32),
        "rs2": Out(32),
        "ready": In(1),
        "result": In(32),
        "fault": In(1),
        "cause": In(5),
    }
)


def permission_signature(num_tiles: int) -> wiring.Signature:
    """The host's write port for a node's send permissions: bit t = may send to tile t, bit num_tiles = to the host."""
    return wiring.Signature({"we": Out(1), "data": Out(num_tiles + 1)})


class MessageUnit(wiring.Component):
    """Everything a node needs on the network: message instructions, mailbox, router.

    Parameters: `address` (node address: tile number, or HOST_NODE), `num_tiles` (tiles on the ring, for the
    permission set), `phase_at_reset` (slot phase of the flit arriving at this stop after reset: ring position mod
    SLOT_FLITS, see RingNetwork), `depth` (inbound queue size in messages), `retry_delay` (cycles between a NACK and
    the retry).

    Contract on `core` (docs/network.md has the table): one instruction at a time; `ready` pulses once per
    instruction; side effects happen only in the ready cycle (or, for SEND, never before it), so an instruction
    that the core abandons while waiting (valid drops) leaves no trace. The unit ignores `valid` in the cycle after
    `ready` so that a core which drops valid one cycle late is not served twice.
    Permissions reset to "none"; a write on `permissions` replaces the whole set.
    """

    def __init__(
        self,
        *,
        address: int,
        num_tiles: int,
        phase_at_reset: int,
        depth: int = 8,
        retry_delay: int = 32,
    ) -> None:
        if not 1 <= num_tiles <= MAX_TILES:
            raise ValueError(f"tile count {num_tiles} outside 1..{MAX_TILES}")
        if address != HOST_NODE and not 0 <= address < num_tiles:
            raise ValueError(f"node address {address} is neither a tile (0..{num_tiles - 1}) nor the host")
        if not 1 <= retry_delay < 1 << 8:
            raise ValueError(f"retry delay {retry_delay} outside 1..255 cycles")
        self._address = address
        self._num_tiles = num_tiles
        self._retry_delay = retry_delay
        super().__init__(
            {
                "core": In(MessagePortSignature),
                "permissions": In(permission_signature(num_tiles)),
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                # Pulse: forget the staged (not yet sent) words. The tile node uses it when the tile restarts or
                # reports a fault, so a half-built message never leaks into the next one.
                "discard": In(1),
            }
        )
        #: The ring stop and the mailbox (public so that tests can watch their ports).
        self.router = Router(address=address, phase_at_reset=phase_at_reset)
        self.mailbox = Mailbox(depth=depth)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.router = router = self.router
        m.submodules.mailbox = mailbox = self.mailbox
        wiring.connect(m, router.eject, mailbox.eject)
        wiring.connect(m, router.staging, mailbox.staging)
        m.d.comb += [
            router.room.eq(mailbox.room),
            router.ring_in.eq(self.ring_in),
            self.ring_out.eq(router.ring_out),
        ]

        permitted = Signal(self._num_tiles + 1)
        with m.If(self.permissions.we):
            m.d.sync += permitted.eq(self.permissions.data)

        # Outbound: one message in flight until its ACK; `pending` = waiting for an empty slot.
        staged = Signal(range(MAX_WORDS + 1))
        in_flight = Signal()
        pending = Signal()
        retry_wait = Signal(range(self._retry_delay + 1))
        m.d.comb += router.inject_request.eq(pending)
        with m.If(router.inject_started):
            m.d.sync += pending.eq(0)
        with m.If(retry_wait != 0):
            m.d.sync += retry_wait.eq(retry_wait - 1)
            with m.If(retry_wait == 1):
                m.d.sync += pending.eq(1)
        with m.If(router.response.valid):
            with m.If(router.response.payload):
                m.d.sync += retry_wait.eq(self._retry_delay)
            with m.Else():
                m.d.sync += in_flight.eq(0)

        # Instruction execution.
        core = self.core
        cooldown = Signal()
        m.d.sync += cooldown.eq(core.ready)
        active = core.valid & ~cooldown

        def finish():
            m.d.comb += core.ready.eq(1)

        def fault(cause: Cause):
            m.d.comb += [core.ready.eq(1), core.fault.eq(1), core.cause.eq(cause)]


        dest = core.rs1[:NODE_BITS]
        upper_rs1_zero = core.rs1[TIMEOUT_BITS:] == 0
        dest_allowed = Signal()
        tile_bits = max(1, (self._num_tiles - 1).bit_length())
        m.d.comb += dest_allowed.eq(
            upper_rs1_zero
            & (core.rs1[NODE_BITS:TIMEOUT_BITS] == 0)
            & Mux(
                dest == HOST_NODE,
                permitted[self._num_tiles],
                (dest < self._num_tiles) & permitted.bit_select(dest[:tile_bits], 1),
            )
        )

        # RECVT's timer counts the cycles since it started and times out when it reaches rs1 (which the core holds
        # stable): an incrementer that starts by reset costs far fewer LUTs than a loadable down-counter.
        timing = Signal()
        timer = Signal(TIMEOUT_BITS)
        with m.If(~active | core.ready):
            m.d.sync += timing.eq(0)
        with m.If(timing):
            m.d.sync += timer.eq(timer + 1)
        with m.Else():
            m.d.sync += timer.eq(0)

        # PUT and SEND write two staging halfwords each, low one first: PUT the halves of rs1 as payload word
        # `staged`, SEND the route header and the tag (rs2). Because SEND only gets here with rs1[NODE_BITS:] = 0,
        # the route header is rs1's low half with the source address and length OR'ed in.
        high = Signal()
        sending = core.funct3 == MessageFunct3.SEND
        route = Signal(RouteHeader)
        m.d.comb += [route.src.eq(self._address), route.len_m1.eq(staged - 1)]
        m.d.comb += [
            mailbox.put.payload.index.eq(Cat(high, Mux(sending, 0, staged + 1))),
            mailbox.put.payload.data.eq(
                Mux(high, Mux(sending, core.rs2[:16], core.rs1[16:]), core.rs1[:16] | Mux(sending, route, 0))
            ),
        ]
        with m.If(~mailbox.put.valid):
            m.d.sync += high.eq(0)
        with m.Elif(mailbox.put.ready):
            m.d.sync += high.eq(~high)
        word_written = mailbox.put.ready & high

        # The result is the mailbox's word (0 unless a read is under way) OR'ed with the small results of SEND
        # (1 = sent), COUNT and STATUS, which are 0 for every other instruction and on a fault: no wide multiplexer.
        status = Signal(MessageStatus)
        m.d.comb += [status.send_busy.eq(in_flight), status.staged.eq(staged), status.unread.eq(mailbox.unread)]
        small_result = Signal(MessageStatus.size)
        with m.Switch(core.funct3):
            with m.Case(MessageFunct3.SEND):
                m.d.comb += small_result.eq(word_written)
            with m.Case(MessageFunct3.QUERY):
                with m.If(core.funct7[1:] == 0):
                    m.d.comb += small_result.eq(Mux(core.funct7[0], status.as_value(), mailbox.count))
        m.d.comb += core.result.eq(mailbox.read_word | small_result)

        # funct3 bit 0 tells GET (3) from the receives (2): the mailbox's read operation needs no decoding.
        assert ReadOp.OPEN.value == MessageFunct3.RECV & 1 and ReadOp.GET.value == MessageFunct3.GET & 1
        m.d.comb += mailbox.read.payload.eq(core.funct3[0])
        with m.If(active):
            with m.Switch(Cat(core.funct7, core.funct3)):
                with m.Case(MessageOp.PUT):
                    with m.If(staged == MAX_WORDS):
                        fault(Cause.MESSAGE_FAULT)
                    with m.Elif(~in_flight):
                        m.d.comb += mailbox.put.valid.eq(1)
                        with m.If(word_written):
                            finish()
                            m.d.sync += staged.eq(staged + 1)
                with m.Case(MessageOp.SEND, MessageOp.TRYSEND):
                    with m.If(~dest_allowed):
                        fault(Cause.SEND_DENIED)
                    with m.Elif((staged == 0) | (core.rs2[16:] != 0)):
                        fault(Cause.MESSAGE_FAULT)
                    with m.Elif(~in_flight):
                        m.d.comb += mailbox.put.valid.eq(1)
                        with m.If(word_written):
                            finish()
                            m.d.sync += [staged.eq(0), in_flight.eq(1), pending.eq(1)]
                    with m.Elif(core.funct7[0]):
                        finish()
                with m.Case(MessageOp.RECV, MessageOp.TRYRECV, MessageOp.RECVT):
                    timed = core.funct7[1]
                    with m.If(timed & ~upper_rs1_zero):
                        fault(Cause.MESSAGE_FAULT)
                    with m.Elif(mailbox.count != 0):
                        m.d.comb += mailbox.read.valid.eq(1)
                        with m.If(mailbox.read.ready):
                            finish()
                    with m.Elif(core.funct7[0]):
                        finish()
                    with m.Elif(timed):
                        with m.If(~timing):
                            m.d.sync += timing.eq(1)
                        with m.Elif(timer == core.rs1[:TIMEOUT_BITS]):
                            finish()
                with m.Case(MessageOp.GET):
                    with m.If(mailbox.unread == 0):
                        fault(Cause.MESSAGE_FAULT)
                    with m.Else():
                        m.d.comb += mailbox.read.valid.eq(1)
                        with m.If(mailbox.read.ready):
                            finish()
                with m.Case(MessageOp.COUNT, MessageOp.STATUS):
                    finish()
                with m.Default():
                    fault(Cause.ILLEGAL_INSN)
        with m.If(self.discard):
            m.d.sync += staged.eq(0)
        return m
