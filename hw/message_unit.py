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
    SLOT_FLITS,
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


#: RECVT's timer while it is not timing: ~1 (see the timer's comment in `MessageUnit.elaborate`).
TIMER_RESTART = (1 << TIMEOUT_BITS) - 2


def permission_signature(num_tiles: int) -> wiring.Signature:
    """The host's write port for a node's send permissions: bit t = may send to tile t, bit num_tiles = to the host."""
    return wiring.Signature({"we": Out(1), "data": Out(num_tiles + 1)})


class MessageUnit(wiring.Component):
    """Everything a node needs on the network: message instructions, mailbox, router.

    Parameters: `address` (node address: tile number, or HOST_NODE), `num_tiles` (tiles on the ring, for the
    permission set), `phase_at_reset` (slot phase of the flit arriving at this stop after reset: ring position mod
    SLOT_FLITS, see RingNetwork), `depth` (inbound queue size in messages), `retry_delay` (cycles between a NACK and
    the retry), `shared_timer` (True: RECVT's timer is outside, see below), `separate_staging` (False: the mailbox
    keeps the staged message in its queue's block RAM, one EBR instead of two, see `Mailbox`).

    Contract on `core` (docs/network.md has the table): one instruction at a time; `ready` pulses once per
    instruction; side effects happen only in the ready cycle (or, for SEND, never before it), so an instruction
    that the core abandons while waiting (valid drops) leaves no trace. The unit ignores `valid` in the cycle after
    `ready` so that a core which drops valid one cycle late is not served twice.
    Permissions reset to "none"; a write on `permissions` replaces the whole set.

    With `shared_timer=True` the unit has no RECVT timer of its own: it raises `timing` while a RECVT waits and
    reads `timer`, which its driver must hold at `TIMER_RESTART` in every cycle after one in which `timing` is 0
    and the core waits in a receive (valid, funct3 RECV), and decrease by 1 after every cycle with `timing` = 1.
    The tile node drives it from its watchdog's counter, which a waiting receive holds idle anyway.
    """

    def __init__(
        self,
        *,
        address: int,
        num_tiles: int,
        phase_at_reset: int,
        depth: int = 8,
        retry_delay: int = 32,
        shared_timer: bool = False,
        separate_staging: bool = True,
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
        self._shared_timer = shared_timer
        timer_members = {"timer": In(TIMEOUT_BITS), "timing": Out(1)} if shared_timer else {}
        super().__init__(
            {
                "core": In(MessagePortSignature),
                "permissions": In(permission_signature(num_tiles)),
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                # Pulse: forget the staged (not yet sent) words. The tile node uses it when the tile restarts or
                # reports a fault, so a half-built message never leaks into the next one.
                "discard": In(1),
                # While 1, SEND may go to any node whatever the permission set: the tile node raises it while its fault
                # reporter owns `core`, whose only SEND is the DOWN message to the tile's supervisor (a node address).
                "send_anywhere": In(1),
                **timer_members,
            }
        )
        #: The ring stop and the mailbox (public so that tests can watch their ports).
        self.router = Router(address=address, phase_at_reset=phase_at_reset, staging_enable=not separate_staging)
        self.mailbox = Mailbox(depth=depth, separate_staging=separate_staging)

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
        # A NACK always arrives on a slot's first flit, and the router only starts a message on a slot's first flit
        # if `pending` was already high on the flit before. So "retry `retry_delay` cycles after the NACK" is the
        # same as "retry on the slot `retry_slots` slots after the NACK's": a 2-bit slot counter does what a
        # cycle counter did.
        retry_slots = max(0, -(-(self._retry_delay - (SLOT_FLITS - 2)) // SLOT_FLITS))
        retry_wait = Signal(range(retry_slots + 1))
        m.d.comb += router.inject_request.eq(pending)
        with m.If(router.inject_started):
            m.d.sync += pending.eq(0)
        with m.If(router.slot_start & (retry_wait != 0)):
            m.d.sync += retry_wait.eq(retry_wait - 1)
            with m.If(retry_wait == 1):
                m.d.sync += pending.eq(1)
        with m.If(router.response.valid):
            with m.If(router.response.payload):
                if retry_slots:
                    m.d.sync += retry_wait.eq(retry_slots)
                else:
                    m.d.sync += pending.eq(1)
            with m.Else():
                m.d.sync += in_flight.eq(0)

        # Instruction execution.
        core = self.core
        cooldown = Signal()
        m.d.sync += cooldown.eq(core.ready)
        active = core.valid & ~cooldown

        dest = core.rs1[:NODE_BITS]
        upper_rs1_zero = core.rs1[TIMEOUT_BITS:] == 0
        dest_allowed = Signal()
        tile_bits = max(1, (self._num_tiles - 1).bit_length())
        m.d.comb += dest_allowed.eq(
            upper_rs1_zero
            & (core.rs1[NODE_BITS:TIMEOUT_BITS] == 0)
            & (
                Mux(
                    dest == HOST_NODE,
                    permitted[self._num_tiles],
                    (dest < self._num_tiles) & permitted.bit_select(dest[:tile_bits], 1),
                )
                | self.send_anywhere
            )
        )

        # RECVT's timer: `left` counts down from ~1 while `timing`, so ~left = 1, 1, 2, 3 ... from the instruction's
        # first checked cycle t0 on (the restart is a synchronous set and reset, no load multiplexer). RECVT times out
        # once ~left >= rs1 (which the core holds stable), that is when rs1 + left does not carry out: a bare carry
        # chain, no XOR tree. The comparison is registered, so that no carry chain lies on `ready`'s path, and reads
        # `left` itself, not the next cycle's value (that cost a LUT a bit in front of the chain): RECVT answers 0 in
        # cycle t0 + 1 + rs1 (t0 + 1 for rs1 = 0 or 1).
        if self._shared_timer:
            timing, left = self.timing, self.timer
        else:
            timing = Signal()
            left = Signal(TIMEOUT_BITS, init=TIMER_RESTART)
            m.d.sync += left.eq(Mux(timing, left - 1, TIMER_RESTART))
        with m.If(~active | core.ready):
            m.d.sync += timing.eq(0)
        timed_out = Signal()
        m.d.sync += timed_out.eq(~(core.rs1[:TIMEOUT_BITS] + left)[TIMEOUT_BITS])

        # PUT and SEND write one staged word each (two halfwords): PUT rs1 as payload word `staged` + 1, SEND the
        # route header and the tag (rs2). Because SEND only gets here with rs1[NODE_BITS:] = 0, the route header is
        # rs1's low half with the source address and length OR'ed in, and the tag is OR'ed into rs1's (zero) high
        # half: the mailbox then chooses between two halves, not three.
        sending = core.funct3 == MessageFunct3.SEND  # SEND, TRYSEND (funct7 = 1)
        route = Signal(RouteHeader)
        m.d.comb += [route.src.eq(self._address), route.len_m1.eq(staged - 1)]
        m.d.comb += [
            mailbox.put.payload.index.eq(Mux(sending, 0, staged + 1)),
            mailbox.put.payload.low.eq(core.rs1[:16] | Mux(sending, route, 0)),
            mailbox.put.payload.high.eq(core.rs1[16:] | Mux(sending, core.rs2[:16], 0)),
        ]
        word_written = mailbox.put.ready

        # The result is the mailbox's word (0 unless a read is under way) OR'ed with the small results of SEND
        # (1 = sent), COUNT and STATUS, which are 0 for every other instruction and on a fault: no wide multiplexer.
        status = Signal(MessageStatus)
        m.d.comb += [status.send_busy.eq(in_flight), status.staged.eq(staged), status.unread.eq(mailbox.unread)]
        # `word_written` is high only in the cycle a PUT or SEND writes its word; funct3 bit 0 tells SEND.
        assert MessageFunct3.SEND & 1 and not MessageFunct3.PUT & 1
        small_result = Signal(MessageStatus.size)
        with m.If(core.funct3 == MessageFunct3.QUERY):
            m.d.comb += small_result.eq(Mux(core.fault, 0, Mux(core.funct7[0], status.as_value(), mailbox.count)))
        with m.Else():
            m.d.comb += small_result.eq(word_written & core.funct3[0])
        m.d.comb += core.result.eq(mailbox.read_word | small_result)

        # funct3 bit 0 tells GET (3) from the receives (2): the mailbox's read operation needs no decoding.
        assert ReadOp.OPEN.value == MessageFunct3.RECV & 1 and ReadOp.GET.value == MessageFunct3.GET & 1
        m.d.comb += mailbox.read.payload.eq(core.funct3[0])
        # The instruction's checks, computed once (their order is the faults' priority: illegal encoding, then a
        # denied destination, then a malformed operand or state). MessageOp lists the legal funct3/funct7 pairs.
        funct3, funct7 = core.funct3, core.funct7
        assert {(op.funct3, op.funct7) for op in MessageOp if op != MessageOp.FAULT} == {
            (0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0), (4, 0), (4, 1)
        }
        is_put = funct3 == MessageFunct3.PUT
        is_send = sending
        is_recv = funct3 == MessageFunct3.RECV  # RECV, TRYRECV (funct7 = 1), RECVT (funct7 = 2)
        is_get = funct3 == MessageFunct3.GET
        is_query = funct3 == MessageFunct3.QUERY  # COUNT, STATUS (funct7 = 1)
        trying = funct7[0]  # TRYSEND, TRYRECV, STATUS
        timed = funct7[1]  # RECVT
        illegal = Signal()
        m.d.comb += illegal.eq(
            (funct7[2:] != 0)
            | (funct3 > MessageFunct3.QUERY)
            | ((is_put | is_get) & (trying | timed))
            | ((is_send | is_query) & timed)
            | (is_recv & trying & timed)
        )
        denied = is_send & ~dest_allowed
        malformed = (
            (is_put & (staged == MAX_WORDS))
            | (is_send & ((staged == 0) | (core.rs2[16:] != 0)))
            | (is_recv & timed & ~upper_rs1_zero)
            | (is_get & (mailbox.unread == 0))
        )
        # The checks are deep (decode, permission lookup, operand tests), so they are registered and an instruction
        # is answered from its second cycle on (`checked`): no path runs from the operands through them to `ready`.
        # The operands are stable while `valid`; the unit state the checks read (staged, unread) changes only in a
        # `ready` cycle, after which `cooldown` makes the next instruction start unchecked again.
        # `checked_faulty` / `checked_ok`: the instruction was under way in the previous cycle too, and its checks
        # failed / passed then.
        checked_faulty = Signal()
        checked_ok = Signal()
        fault_cause = Signal(5)
        faulty = illegal | denied | malformed
        m.d.sync += [
            checked_faulty.eq(active & ~core.ready & faulty),
            checked_ok.eq(active & ~core.ready & ~faulty),
            fault_cause.eq(Mux(illegal, Cause.ILLEGAL_INSN, Mux(denied, Cause.SEND_DENIED, Cause.MESSAGE_FAULT))),
        ]
        # A checked instruction was not answered in the previous cycle, so `cooldown` is 0: only `valid` is needed.
        with m.If(core.valid & checked_faulty):
            m.d.comb += [core.fault.eq(1), core.cause.eq(fault_cause)]
        go = core.valid & checked_ok
        has_message = mailbox.count != 0
        writes = (is_put | is_send) & ~in_flight
        reads = is_get | (is_recv & has_message)
        m.d.comb += [
            mailbox.put.valid.eq(go & writes),
            mailbox.read.valid.eq(go & reads),
            core.ready.eq(
                (core.valid & checked_faulty)
                | (go & writes & word_written)
                | (go & reads & mailbox.read.ready)
                | (go & is_query)
                | (go & is_send & in_flight & trying)
                | (go & is_recv & ~has_message & (trying | (timed & timing & timed_out)))
            ),
        ]
        with m.If(go & is_recv & ~has_message & timed & ~timing):
            m.d.sync += timing.eq(1)
        with m.If(go & writes & word_written):
            with m.If(is_send):
                m.d.sync += [staged.eq(0), in_flight.eq(1), pending.eq(1)]
            with m.Else():
                m.d.sync += staged.eq(staged + 1)
        with m.If(self.discard):
            m.d.sync += staged.eq(0)
        return m
