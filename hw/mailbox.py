"""A node's mailbox: a queue of whole inbound messages and one staged outbound message, in two block RAMs or one."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tessera.hw.noc_layouts import (
    ENTRY_HALVES,
    FLIT_BITS,
    MAX_WORDS,
    SLOT_FLITS,
    EjectFlit,
    ReceivedHeader,
    RouteHeader,
)
from tessera.hw.router import staging_read_signature


class ReadOp(enum.Enum, shape=1):
    OPEN = 0  # drop the open message (if any), open the next one and read its header word
    GET = 1  # read the open message's next payload word


#: Write staged word `index` as two halfwords, laid out as the slot carries them: word 0 = route header (`low`) and
#: tag (`high`), words 1..MAX_WORDS = payload (`low`, `high`).
PutRequest = data.StructLayout({"index": range(MAX_WORDS + 1), "low": FLIT_BITS, "high": FLIT_BITS})


class Mailbox(wiring.Component):
    """`depth` inbound entries of one whole message each in a 16-bit wide memory, plus one staging entry in another.

    Every entry spans ENTRY_HALVES halfwords, laid out as the slot that brought it (header, tag, payload halves), so
    a message of any length takes one entry. The staging entry has a block RAM of its own, so that ejection and
    PUT/SEND never share a write port, nor the router's staging reads and RECV/GET a read port: no port multiplexers,
    no waiting (≈ 28 logic cells fewer for one more EBR). With `separate_staging=False` the staging entry is the
    entry after the queue's in the same memory ((depth + 1) * ENTRY_HALVES halfwords: one EBR up to depth 8): the
    ring's ejection writes and the router's staging reads (`staging.en`) take the ports first, since the ring never
    waits, and `put` and `read` wait while the port they need is taken. Contract:
    - `room` = an entry is free. The router ejects a slot only after seeing `room`, then writes flit k of the slot to
      halfword k of the tail entry, one per cycle; after the last flit the entry is complete and counts in `count`.
    - `read` (valid held until ready): OPEN (caller ensures `count > 0`) frees the open entry, opens the next, and
      sets `unread` to its length; `read_word` is then its ReceivedHeader word. GET (caller ensures `unread > 0`)
      gives the next payload word. `read_word` is valid in the ready cycle and is 0 from the cycle after `read.valid`
      was low (so the message unit can OR its other results into it); its high half is 0 whenever `read.ready` is.
      A read takes 3 cycles, ready in the third (with `separate_staging=False`, one more per cycle in which it
      waits for a staging read).
    - `put` (valid held until ready): writes staged word `index` (0 = route header and tag) in two cycles; ready in
      the second (with `separate_staging=False`, in the second cycle without ejection).
    - `staging` (the router, while it injects) reads the staging entry; data arrives the cycle after `index` (with
      `separate_staging=False`, after a cycle with `en`).
    The open entry stays occupied until the next OPEN, so a fully read message holds its entry until then.
    """

    def __init__(self, *, depth: int = 8, separate_staging: bool = True) -> None:
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"mailbox depth {depth} must be a power of two, at least 2")
        self._depth = depth
        self._separate_staging = separate_staging
        super().__init__(
            {
                "eject": In(stream.Signature(EjectFlit, always_ready=True)),
                "room": Out(1),
                "staging": In(staging_read_signature(with_enable=not separate_staging)),
                "put": In(stream.Signature(PutRequest)),
                "read": In(stream.Signature(ReadOp)),
                "read_word": Out(32),
                "count": Out(range(depth + 1)),
                "unread": Out(range(MAX_WORDS + 1)),
            }
        )

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def separate_staging(self) -> bool:
        return self._separate_staging

    def elaborate(self, platform: object) -> Module:
        m = Module()
        depth = self._depth
        entry_bits = (depth - 1).bit_length()
        halves_bits = (ENTRY_HALVES - 1).bit_length()
        separate = self._separate_staging
        # A read never hits the halfword being written in the same cycle (staging is written only while nothing is
        # in flight, so never while the router reads it; an entry is read only once complete, so never while it is
        # filled). `no_rw_check` tells Yosys so; otherwise it adds read-during-write bypass logic.
        m.submodules.memory = memory = Memory(
            shape=FLIT_BITS, depth=(depth + (not separate)) * ENTRY_HALVES, init=[], attrs={"no_rw_check": 1}
        )
        write = memory.write_port()
        read = memory.read_port(domain="sync")
        if separate:
            m.submodules.staging = staging = Memory(
                shape=FLIT_BITS, depth=ENTRY_HALVES, init=[], attrs={"no_rw_check": 1}
            )
            staging_write = staging.write_port()
            staging_read = staging.read_port(domain="sync")
        else:
            staging_write = write
            staging_entry = Const(depth, entry_bits + 1)  # just past the queue's entries

        # Entry pointers with a wrap bit: complete, unopened messages = tail - head; the open entry (just before
        # head) is still occupied, so the mailbox is full at count = depth, or depth - 1 with a message open.
        head = Signal(entry_bits + 1)  # the next entry to open
        tail = Signal(entry_bits + 1)  # the entry being filled
        is_open = Signal()
        open_entry = Signal(entry_bits)  # the open message's entry (valid while is_open)
        m.d.comb += [
            self.count.eq(tail - head),
            self.room.eq(~((self.count == depth) | ((self.count == depth - 1) & is_open))),
        ]

        # The queue's write port belongs to ejection (in one memory: ejection first, it cannot wait).
        ejecting = self.eject.valid
        m.d.comb += [
            write.data.eq(self.eject.payload.data),
            write.addr.eq(Cat(self.eject.payload.index[:halves_bits], tail[:entry_bits])),
            write.en.eq(ejecting),
        ]
        with m.If(ejecting & (self.eject.payload.index == SLOT_FLITS - 1)):
            m.d.sync += tail.eq(tail + 1)

        # The staging entry's write port: a staged word's low half, then its high half (the message unit folds SEND's
        # tag into `high`, so the choice is 2-way). Its read port belongs to the router.
        put = self.put.payload
        second = Signal()  # the put's second (high) halfword is next
        staged_address = Cat(second, put.index) if separate else Cat(second, put.index, staging_entry)
        write_staged = [
            staging_write.data.eq(Mux(second, put.high, put.low)),
            staging_write.addr.eq(staged_address),
            staging_write.en.eq(self.put.valid),
            self.put.ready.eq(second),
        ]
        if separate:
            m.d.comb += write_staged
            m.d.sync += second.eq(self.put.valid & ~second)
            m.d.comb += [
                staging_read.addr.eq(self.staging.index[:halves_bits]),
                self.staging.data.eq(staging_read.data),
            ]
        else:
            # A put's halfword is written in a cycle without ejection; a put given up meanwhile starts over.
            with m.If(~ejecting):
                m.d.comb += write_staged
                m.d.sync += second.eq(self.put.valid & ~second)
            with m.Elif(~self.put.valid):
                m.d.sync += second.eq(0)

        # The queue's read port: the two halves of a word of the open entry. The low half is collected in registers
        # (cleared while no read is requested); the high half is read last and passed on straight from the memory in
        # the ready cycle, gated by `ready` (a LUT that merges into whatever takes the word: the unit's OR with its
        # other results, the core's load multiplexer), so the word costs no output multiplexer and the high half no
        # flip-flops.
        opening = self.read.payload == ReadOp.OPEN
        entry = Signal(entry_bits)
        m.d.comb += entry.eq(Mux(opening, head[:entry_bits], open_entry))
        next_word = Signal(range(MAX_WORDS + 1))  # payload word GET reads next (1..MAX_WORDS)
        high = Signal()
        m.d.comb += read.addr.eq(Cat(high, Mux(opening, 0, next_word), entry))
        if not separate:
            # The router's staging reads take the read port (the ring cannot wait); a read of the queue waits for it.
            with m.If(self.staging.en):
                m.d.comb += read.addr.eq(Cat(self.staging.index[:halves_bits], staging_entry))
            m.d.comb += self.staging.data.eq(read.data)
        # A requested read starts in a cycle in which the router does not take the read port.
        read_starts = self.read.valid if separate else self.read.valid & ~self.staging.en

        # The word's low half, as flip-flops with enable and synchronous reset (no LUT on their data), except where
        # OPEN turns the route header into the ReceivedHeader: the source moves down, the length gains one.
        received = Signal(ReceivedHeader)
        low_half = received.as_value()[:FLIT_BITS]
        m.d.comb += self.read_word.eq(Cat(low_half, read.data & self.read.ready.replicate(FLIT_BITS)))
        stored = RouteHeader(read.data)
        load_low = Signal()
        # The header word's zero bits are cleared by the flip-flops' synchronous reset, not by a LUT on their data.
        with m.If(~self.read.valid | (load_low & opening)):
            m.d.sync += [received["_zero0"].eq(0), received["_zero1"].eq(0)]
        with m.Elif(load_low):
            m.d.sync += [received["_zero0"].eq(read.data[7]), received["_zero1"].eq(read.data[11:])]
        with m.If(~self.read.valid):
            m.d.sync += [received.src.eq(0), received.len.eq(0)]
        with m.Elif(load_low):
            m.d.sync += [
                received.src.eq(Mux(opening, stored.src, read.data[:7])),
                received.len.eq(Mux(opening, stored.len_m1 + 1, read.data[8:11])),
            ]
        with m.FSM(name="read_fsm"):
            with m.State("IDLE"):
                with m.If(read_starts):
                    m.next = "LOW_ARRIVES"
            with m.State("LOW_ARRIVES"):
                m.d.comb += high.eq(1)
                with m.If(~self.read.valid):
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += load_low.eq(1)
                    m.next = "HIGH_ARRIVES"
                    if not separate:
                        with m.If(self.staging.en):
                            m.next = "HIGH_WAITS"
            if not separate:
                with m.State("HIGH_WAITS"):  # the low half is in; the high half's read waits for the port
                    m.d.comb += high.eq(1)
                    with m.If(~self.read.valid):
                        m.next = "IDLE"
                    with m.Elif(~self.staging.en):
                        m.next = "HIGH_ARRIVES"
            with m.State("HIGH_ARRIVES"):
                # The memory's read data is the high half in this cycle only: the read is answered now.
                with m.If(self.read.valid):
                    m.d.comb += self.read.ready.eq(1)
                    with m.If(opening):
                        m.d.sync += [
                            head.eq(head + 1),
                            open_entry.eq(entry),
                            is_open.eq(1),
                            next_word.eq(1),
                            self.unread.eq(received.len),
                        ]
                    with m.Else():
                        m.d.sync += [next_word.eq(next_word + 1), self.unread.eq(self.unread - 1)]
                m.next = "IDLE"
        return m
