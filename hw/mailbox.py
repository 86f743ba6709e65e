"""A node's mailbox: a queue of whole inbound messages and one staged outbound message, in one block RAM."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tessera.hw.noc_layouts import ENTRY_HALVES, FLIT_BITS, MAX_WORDS, SLOT_FLITS, EjectFlit, RouteHeader
from tessera.hw.router import StagingReadSignature


class ReadOp(enum.Enum, shape=1):
    OPEN = 0  # drop the open message (if any), open the next one and read its header word
    GET = 1  # read the open message's next payload word


#: Write staging word `index`: 0 = header word (route header | tag << 16), 1..MAX_WORDS = payload words.
PutRequest = data.StructLayout({"index": range(MAX_WORDS + 1), "word": 32})


class Mailbox(wiring.Component):
    """`depth` inbound entries of one whole message each, plus one staging entry, in a 16-bit wide memory.

    Every entry spans ENTRY_HALVES halfwords, laid out as the slot that brought it (header, tag, payload halves), so
    a message of any length takes one entry. Contract:
    - `room` = an entry is free. The router ejects a slot only after seeing `room`, then writes flit k of the slot to
      halfword k of the tail entry, one per cycle; after the last flit the entry is complete and counts in `count`.
    - `read` (valid held until ready; `read_word` is valid in the ready cycle): OPEN (caller ensures `count > 0`)
      frees the open entry, opens the next, returns its header word and sets `unread` to its length. GET (caller
      ensures `unread > 0`) returns the next payload word. A read takes at least 3 cycles (two halfword reads).
    - `put` (valid held until ready) writes a staging word in two cycles; ejection has priority on the write port.
    - `staging` (the router, while it injects) has priority on the read port; data arrives the cycle after `en`.
    The open entry stays occupied until the next OPEN, so a fully read message holds its entry until then.
    """

    def __init__(self, *, depth: int = 8) -> None:
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"mailbox depth {depth} must be a power of two, at least 2")
        self._depth = depth
        super().__init__(
            {
                "eject": In(stream.Signature(EjectFlit, always_ready=True)),
                "room": Out(1),
                "staging": In(StagingReadSignature),
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

    def elaborate(self, platform: object) -> Module:
        m = Module()
        depth = self._depth
        entry_bits = (depth - 1).bit_length()
        # Entry `depth` (just past the queue) is the staging entry.
        m.submodules.memory = memory = Memory(shape=FLIT_BITS, depth=(depth + 1) * ENTRY_HALVES, init=[])
        write = memory.write_port()
        read = memory.read_port(domain="sync")

        # Entry pointers with a wrap bit: occupied = tail - head (the open entry included).
        head = Signal(entry_bits + 1)  # the open entry, or the next one to open
        tail = Signal(entry_bits + 1)  # the entry being filled
        is_open = Signal()
        occupied = Signal(entry_bits + 1)
        m.d.comb += [
            occupied.eq(tail - head),
            self.room.eq(occupied != depth),
            self.count.eq(occupied - is_open),
        ]

        # Write port: ejection first, then staging.
        put_high = Signal()  # the put word's low half is written
        with m.If(self.eject.valid):
            m.d.comb += [
                write.addr.eq(Cat(self.eject.payload.index, tail[:entry_bits])),
                write.data.eq(self.eject.payload.data),
                write.en.eq(1),
            ]
            with m.If(self.eject.payload.index == SLOT_FLITS - 1):
                m.d.sync += tail.eq(tail + 1)
        with m.Elif(self.put.valid):
            put = self.put.payload
            m.d.comb += [
                write.addr.eq(depth * ENTRY_HALVES + Cat(put_high, put.index)),
                write.data.eq(Mux(put_high, put.word[16:], put.word[:16])),
                write.en.eq(1),
                self.put.ready.eq(put_high),
            ]
            m.d.sync += put_high.eq(~put_high)
        with m.If(~self.put.valid):
            m.d.sync += put_high.eq(0)

        # Read port: the router's staging reads first, then the two halves of a word of the open entry.
        opening = self.read.payload == ReadOp.OPEN
        entry = Signal(entry_bits + 1)
        m.d.comb += entry.eq(Mux(opening & is_open, head + 1, head))
        next_word = Signal(range(MAX_WORDS + 1))  # payload word GET reads next (1..MAX_WORDS)
        high = Signal()
        m.d.comb += read.addr.eq(Cat(high, Mux(opening, 0, next_word), entry[:entry_bits]))
        with m.If(self.staging.en):
            m.d.comb += read.addr.eq(depth * ENTRY_HALVES + self.staging.index)
        low_half = Signal(FLIT_BITS)
        m.d.comb += [self.staging.data.eq(read.data), self.read_word.eq(Cat(low_half, read.data))]

        with m.FSM(name="read_fsm"):
            with m.State("IDLE"):
                with m.If(self.read.valid & ~self.staging.en):
                    m.next = "LOW_ARRIVES"
            with m.State("LOW_ARRIVES"):
                m.d.sync += low_half.eq(read.data)
                m.d.comb += high.eq(1)
                with m.If(~self.read.valid):
                    m.next = "IDLE"
                with m.Elif(~self.staging.en):
                    m.next = "HIGH_ARRIVES"
                with m.Else():
                    m.next = "HIGH_WAITS"
            with m.State("HIGH_WAITS"):
                m.d.comb += high.eq(1)
                with m.If(~self.read.valid):
                    m.next = "IDLE"
                with m.Elif(~self.staging.en):
                    m.next = "HIGH_ARRIVES"
            with m.State("HIGH_ARRIVES"):
                with m.If(self.read.valid):
                    m.d.comb += self.read.ready.eq(1)
                    with m.If(opening):
                        m.d.sync += [
                            head.eq(entry),
                            is_open.eq(1),
                            next_word.eq(1),
                            self.unread.eq(RouteHeader(low_half).len_m1 + 1),
                        ]
                    with m.Else():
                        m.d.sync += [next_word.eq(next_word + 1), self.unread.eq(self.unread - 1)]
                m.next = "IDLE"
        return m
