"""A ring stop without a mailbox, for a node that acts on every message the moment it passes (the I/O node).

A tile's stop (`Router` + `Mailbox`) stores whole messages because its core reads them later. A node whose logic
can use a message while its flits go by needs none of that: this port hands over the first flits of each message
addressed to it (sender and tag, then the low half of payload word 0) as they arrive, always answers ACK, and sends
one message at a time straight from its owner's registers. On the wire it follows the same rules as a tile's stop
(docs/network.md): slot phase from a counter, ACK/NACK in the slot that brought the message, one message in flight
until its ACK, a retry after a NACK, never refilling a slot it has just emptied.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.noc_layouts import FLIT_BITS, HOST_NODE, NODE_BITS, SLOT_FLITS, Flit, RouteHeader, SlotKind

#: What the port reports of a message addressed to its node as its tag (flit 1) passes: its sender and its tag. The
#: low half of payload word 0 (flit 2; a message always carries at least one word) is on `IoRingPort.low_half` in the
#: next cycle.
Arrival = data.StructLayout({"src": NODE_BITS, "tag": 16})

#: The owner's outbound message, seen from the owner. `request` = a message is waiting (held until `delivered`);
#: the port asks for flit `index` of the slot (0 = route header, 1 = tag, 2.. = payload halves) in the cycle it
#: puts it on the ring, and the owner answers on `flit` in the same cycle; the message must not change while
#: `request` is high. `delivered` pulses when the receiver's ACK came back (the owner may then drop or replace it).
OutboundSignature = wiring.Signature(
    {
        "request": Out(1),
        "index": In(range(SLOT_FLITS)),
        "flit": Out(FLIT_BITS),
        "delivered": In(1),
    }
)


class IoRingPort(wiring.Component):
    """The ring stop of node `address` (contract in the module docstring).

    Per slot arriving at `ring_in`, on its first flit:
    - DATA for this node: answered ACK (the node never lacks room); one cycle later `arrival` is valid for one
      cycle with the message's sender and tag, and in the cycle after that `low_half` is the low payload half.
    - ACK/NACK from this node's message: the slot leaves empty; an ACK pulses `outbound.delivered`, a NACK makes the
      port try again after `retry_slots` slots have passed.
    - EMPTY while a message waits: the port fills the slot with it (DATA).
    - anything else is forwarded unchanged.
    """

    def __init__(self, *, address: int, phase_at_reset: int, retry_slots: int = 3) -> None:
        if not 0 <= address < HOST_NODE:
            raise ValueError(f"node address {address} outside 0..{HOST_NODE - 1}")
        if not 0 <= phase_at_reset < SLOT_FLITS:
            raise ValueError(f"slot phase {phase_at_reset} outside 0..{SLOT_FLITS - 1}")
        if not 1 <= retry_slots <= 8:
            raise ValueError(f"retry delay of {retry_slots} slots outside 1..8")
        self._address = address
        self._phase_at_reset = phase_at_reset
        self._retry_slots = retry_slots
        super().__init__(
            {
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                "arrival": Out(stream.Signature(Arrival, always_ready=True)),
                "low_half": Out(FLIT_BITS),
                "outbound": In(OutboundSignature),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        incoming = self.ring_in
        header = RouteHeader(incoming.data)
        phase = Signal(range(SLOT_FLITS), init=self._phase_at_reset)
        m.d.sync += phase.eq(Mux(phase == SLOT_FLITS - 1, 0, phase + 1))
        slot_start = phase == 0

        # Outbound, stop-and-wait: `busy` from taking the request until its ACK; `waiting` while it needs a slot.
        outbound = self.outbound
        busy = Signal()
        waiting = Signal()
        injecting = Signal()  # this slot carries our message
        retry_wait = Signal(range(self._retry_slots + 1))
        with m.If(outbound.request & ~busy):
            m.d.sync += [busy.eq(1), waiting.eq(1)]

        for_me = slot_start & (incoming.kind == SlotKind.DATA) & (header.dest == self._address)
        answer_for_me = (
            slot_start
            & ((incoming.kind == SlotKind.ACK) | (incoming.kind == SlotKind.NACK))
            & (header.src == self._address)
        )
        start_inject = slot_start & (incoming.kind == SlotKind.EMPTY) & waiting
        with m.If(slot_start):
            m.d.sync += injecting.eq(start_inject)
        with m.If(start_inject):
            m.d.sync += waiting.eq(0)
        with m.If(answer_for_me):
            with m.If(incoming.kind == SlotKind.NACK):
                m.d.sync += retry_wait.eq(self._retry_slots)
            with m.Else():
                m.d.sync += busy.eq(0)
                m.d.comb += outbound.delivered.eq(1)
        with m.Elif(slot_start & (retry_wait != 0)):
            m.d.sync += retry_wait.eq(retry_wait - 1)
            with m.If(retry_wait == 1):
                m.d.sync += waiting.eq(1)

        sending = start_inject | (injecting & ~slot_start)
        m.d.comb += outbound.index.eq(phase)
        m.d.sync += [
            self.ring_out.data.eq(Mux(sending, outbound.flit, incoming.data)),
            self.ring_out.kind.eq(incoming.kind),
        ]
        with m.If(for_me):
            m.d.sync += self.ring_out.kind.eq(SlotKind.ACK)
        with m.Elif(answer_for_me):
            m.d.sync += self.ring_out.kind.eq(SlotKind.EMPTY)
        with m.Elif(start_inject):
            m.d.sync += self.ring_out.kind.eq(SlotKind.DATA)

        # Inbound: one cycle after the route header (flit 0) the tag arrives, while the header, on its way round,
        # is in `ring_out` (a slot that brings a message is not one the port fills): sender and tag are at hand
        # without storing either. The low payload half follows on `ring_in`.
        m.d.sync += self.arrival.valid.eq(for_me)
        m.d.comb += [
            self.arrival.payload.src.eq(RouteHeader(self.ring_out.data).src),
            self.arrival.payload.tag.eq(incoming.data),
            self.low_half.eq(incoming.data),
        ]
        return m
