"""One stop of the slotted ring: forwards, ejects and injects 16-bit flits, one hop per cycle, never stalling."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.noc_layouts import FLIT_BITS, NODE_BITS, SLOT_FLITS, EjectFlit, Flit, RouteHeader, SlotKind


def staging_read_signature(*, with_enable: bool) -> wiring.Signature:
    """The router reads the staged message (header, tag, payload halves, in the mailbox's memory) one flit per cycle,
    one cycle ahead of putting it on the ring: `data` is the flit `index` named in the cycle before. `with_enable`
    adds `en`, high in the cycles whose `index` the router uses, for a mailbox whose staging entry shares the read
    port with the queue (`Mailbox(separate_staging=False)`): those reads then take the port."""
    members = {"index": Out(range(SLOT_FLITS)), "data": In(FLIT_BITS)}
    if with_enable:
        members["en"] = Out(1)
    return wiring.Signature(members)


class Router(wiring.Component):
    """A ring stop for node `address`.

    Contract, per cycle, on the flit arriving at `ring_in` (`ring_out` is the register feeding the next stop). The
    stop keeps the slot phase in a counter that starts at `phase_at_reset`; on a slot's first flit:
    - DATA with dest = this node: the slot is ejected whole (`eject`, flit index = position in the slot) if `room`
      (the mailbox has a free entry) and turns into an ACK; without room nothing is ejected and it turns into a
      NACK. The route header stays as it is (src still names the sender). The ring never waits for the mailbox.
    - ACK/NACK with src = this node: reported on `response` (payload = 1 for NACK); the slot leaves empty.
    - EMPTY while `inject_request` was already high on the slot before's last flit: the stop fills the slot with the
      staged message, read from `staging` (flit k is read in the cycle before it leaves; flit 0 is read, in case, on
      the last flit of the slot before) and pulses `inject_started`.
    - anything else is forwarded unchanged.
    `slot_start` is high while a slot's first flit arrives (a tick every SLOT_FLITS cycles, for slot-timed waits).
    With `staging_enable`, `staging.en` marks the cycles whose staging read the stop uses (the slot before's last flit
    while `inject_request`, then the injected slot's flits but its last).
    The stop never re-uses a slot it has just emptied: the stop after it gets the chance first, so slot ownership
    rotates around the ring and no sender starves.
    """

    def __init__(self, *, address: int, phase_at_reset: int, staging_enable: bool = False) -> None:
        if not 0 <= address < 1 << NODE_BITS:
            raise ValueError(f"router address {address} does not fit {NODE_BITS} bits")
        if not 0 <= phase_at_reset < SLOT_FLITS:
            raise ValueError(f"slot phase {phase_at_reset} outside 0..{SLOT_FLITS - 1}")
        self._address = address
        self._phase_at_reset = phase_at_reset
        self._staging_enable = staging_enable
        super().__init__(
            {
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                "room": In(1),
                "eject": Out(stream.Signature(EjectFlit, always_ready=True)),
                "inject_request": In(1),
                "inject_started": Out(1),
                "staging": Out(staging_read_signature(with_enable=staging_enable)),
                "response": Out(stream.Signature(1, always_ready=True)),
                "slot_start": Out(1),
            }
        )

    @property
    def address(self) -> int:
        return self._address

    def elaborate(self, platform: object) -> Module:
        m = Module()
        incoming = self.ring_in
        header = RouteHeader(incoming.data)
        # Position of the arriving flit within its slot: 0 = the slot's first flit.
        phase = Signal(range(SLOT_FLITS), init=self._phase_at_reset)
        next_phase = Mux(phase == SLOT_FLITS - 1, 0, phase + 1)
        m.d.sync += phase.eq(next_phase)
        slot_start = phase == 0

        ejecting = Signal()  # this slot is being written into the mailbox
        injecting = Signal()  # this slot is being filled from staging

        is_response = (incoming.kind == SlotKind.ACK) | (incoming.kind == SlotKind.NACK)
        arriving_data = slot_start & (incoming.kind == SlotKind.DATA) & (header.dest == self._address)
        arriving_response = slot_start & is_response & (header.src == self._address)
        # The header flit is read on the slot's last flit, so a request may only start on the slot after that.
        header_read = Signal()
        m.d.sync += header_read.eq(self.inject_request & (phase == SLOT_FLITS - 1))
        start_inject = slot_start & (incoming.kind == SlotKind.EMPTY) & header_read

        with m.If(slot_start):
            m.d.sync += [ejecting.eq(arriving_data & self.room), injecting.eq(start_inject)]

        sending = start_inject | (injecting & ~slot_start)
        m.d.sync += [
            self.ring_out.data.eq(Mux(sending, self.staging.data, incoming.data)),
            self.ring_out.kind.eq(incoming.kind),
        ]
        with m.If(arriving_data):
            m.d.sync += self.ring_out.kind.eq(Mux(self.room, SlotKind.ACK, SlotKind.NACK))
        with m.Elif(arriving_response):
            m.d.sync += self.ring_out.kind.eq(SlotKind.EMPTY)
        with m.Elif(start_inject):
            m.d.sync += self.ring_out.kind.eq(SlotKind.DATA)

        m.d.comb += [
            self.slot_start.eq(slot_start),
            self.inject_started.eq(start_inject),
            self.eject.valid.eq((arriving_data & self.room) | (ejecting & ~slot_start)),
            self.eject.payload.data.eq(incoming.data),
            self.eject.payload.index.eq(phase),
            self.response.valid.eq(arriving_response),
            self.response.payload.eq(incoming.kind == SlotKind.NACK),
            self.staging.index.eq(next_phase),
        ]
        if self._staging_enable:
            m.d.comb += self.staging.en.eq(
                (self.inject_request & (phase == SLOT_FLITS - 1))
                | start_inject
                | (injecting & (phase != 0) & (phase != SLOT_FLITS - 1))
            )
        return m
