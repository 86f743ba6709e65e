"""A random traffic generator and checker that plays a tile on the message port (verification only).

It stands in for a core running a stress program, so that long random runs go at the simulator's full speed with
no testbench code on the clock: it sends `quota` messages of random length (1..MAX_WORDS) to random nodes, and
receives at random moments with random stalls (a "hoarding" node stops receiving for thousands of cycles, so its
mailbox stays full). Every message carries a per-(sender, receiver) sequence number in its tag and payload words
derived from (src, dest, seq, index); the receiving side checks them and counts duplicates (sequence behind),
gaps (sequence ahead: a loss or reordering) and corrupt words.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tessera.hw.message_unit import MessagePortSignature
from tessera.hw.noc_layouts import HOST_NODE, MAX_WORDS, NODE_BITS, MessageOp, ReceivedHeader


def expected_word(src, dest, seq, index):
    """The payload word `index` of message `seq` from src to dest (Amaranth values or ints alike)."""
    return Cat(seq[:16], src[:NODE_BITS], index[:2], dest[:NODE_BITS])


class TrafficNode(wiring.Component):
    """Random sender/receiver for node index `index` of a ring with `num_tiles` tiles (index num_tiles = host)."""

    def __init__(self, *, index: int, num_tiles: int, quota: int, seed: int, hoarder: bool) -> None:
        if not 1 <= seed < 1 << 32:
            raise ValueError("the LFSR seed must be a non-zero 32-bit value")
        self._index = index
        self._num_tiles = num_tiles
        self._quota = quota
        self._seed = seed
        self._hoarder = hoarder
        super().__init__(
            {
                "core": Out(MessagePortSignature),
                "enable": In(1),
                "sent": Out(32),
                "received": Out(32),
                "duplicates": Out(16),
                "gaps": Out(16),
                "corrupt": Out(16),
                "done_sending": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        nodes = self._num_tiles + 1
        address = HOST_NODE if self._index == self._num_tiles else self._index
        me = Signal(NODE_BITS, init=address)

        # Galois LFSR (x^32 + x^22 + x^2 + x + 1), one step per cycle.
        lfsr = Signal(32, init=self._seed)
        m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ 0x80200003, lfsr >> 1))

        # Per-node sequence numbers live in small memories with combinational read ports, not in `Array`s of
        # registers: an Array indexed by a signal becomes a multiplexer per use, and with 65 nodes those made the
        # 64-tile bench 30 MB of Verilog that Verilator could not compile in 15 minutes.
        m.submodules.next_seq = next_seq = Memory(shape=16, depth=nodes, init=[])
        m.submodules.expect_seq = expect_seq = Memory(shape=16, depth=nodes, init=[])
        next_seq_write = next_seq.write_port()
        next_seq_read = next_seq.read_port(domain="comb")
        expect_seq_write = expect_seq.write_port()
        expect_seq_header = expect_seq.read_port(domain="comb")
        expect_seq_word = expect_seq.read_port(domain="comb")

        core = self.core
        op = Signal(10)
        m.d.comb += [core.funct7.eq(op[:7]), core.funct3.eq(op[7:])]

        def issue(instruction: MessageOp, rs1=0, rs2=0):
            m.d.sync += [core.valid.eq(1), op.eq(instruction.value), core.rs1.eq(rs1), core.rs2.eq(rs2)]

        dest_index = Signal(range(nodes))
        dest_address = Signal(NODE_BITS)
        m.d.comb += dest_address.eq(Mux(dest_index == self._num_tiles, HOST_NODE, dest_index))
        seq_to_dest = next_seq_read.data
        m.d.comb += [next_seq_read.addr.eq(dest_index), next_seq_write.addr.eq(dest_index)]
        m.d.comb += next_seq_write.data.eq(seq_to_dest + 1)
        length = Signal(range(MAX_WORDS + 1))
        word = Signal(range(MAX_WORDS + 1))
        src_index = Signal(range(nodes))
        src_address = Signal(NODE_BITS)
        header = ReceivedHeader(core.result)
        source_index = Mux(header.src == HOST_NODE, self._num_tiles, header.src)
        m.d.comb += [
            expect_seq_header.addr.eq(source_index),
            expect_seq_write.addr.eq(source_index),
            expect_seq_write.data.eq(header.tag + 1),
            expect_seq_word.addr.eq(src_index),
        ]
        stall = Signal(16)
        with m.If(stall != 0):
            m.d.sync += stall.eq(stall - 1)

        sending_done = self.sent == self._quota
        m.d.comb += self.done_sending.eq(sending_done)
        done = core.valid & core.ready

        with m.If(done):
            m.d.sync += core.valid.eq(0)

        with m.FSM():
            with m.State("START"):
                with m.If(self.enable):
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(~sending_done & lfsr[3]):
                    issue(MessageOp.STATUS)
                    m.next = "CHECK_BUSY"
                with m.Elif(stall == 0):
                    with m.If(lfsr[4:10] == 0):
                        # Take a break from receiving: short, or (hoarder) long enough to fill the mailbox.
                        m.d.sync += stall.eq(lfsr[10:23] if self._hoarder else lfsr[10:16])
                    with m.Elif(lfsr[12]):
                        issue(MessageOp.TRYRECV)
                        m.next = "HEADER"
                    with m.Else():
                        issue(MessageOp.RECVT, rs1=lfsr[16:21])
                        m.next = "HEADER"
            with m.State("CHECK_BUSY"):
                with m.If(done):
                    with m.If(core.result[0]):
                        m.next = "DECIDE"
                    with m.Else():
                        m.next = "PICK"
            with m.State("PICK"):
                # Uniform over nodes: draw until the value is a node index.
                candidate = lfsr[8:8 + max(1, (nodes - 1).bit_length())]
                with m.If(candidate < nodes):
                    m.d.sync += [dest_index.eq(candidate), length.eq(lfsr[20:22] + 1), word.eq(0)]
                    m.next = "PUT"
            with m.State("PUT"):
                with m.If(word == length):
                    issue(
                        MessageOp.TRYSEND if self._index % 2 else MessageOp.SEND,
                        rs1=dest_address,
                        rs2=seq_to_dest,
                    )
                    m.next = "SEND"
                with m.Else():
                    issue(MessageOp.PUT, rs1=expected_word(me, dest_address, seq_to_dest, word))
                    m.next = "PUT_WAIT"
            with m.State("PUT_WAIT"):
                with m.If(done):
                    m.d.sync += word.eq(word + 1)
                    m.next = "PUT"
            with m.State("SEND"):
                with m.If(done):
                    with m.If(core.result == 1):
                        m.d.comb += next_seq_write.en.eq(1)
                        m.d.sync += self.sent.eq(self.sent + 1)
                    m.next = "DECIDE"
            with m.State("HEADER"):
                with m.If(done):
                    with m.If(core.result == 0):
                        m.next = "DECIDE"
                    with m.Else():
                        expected = expect_seq_header.data
                        with m.If(header.tag < expected):
                            m.d.sync += self.duplicates.eq(self.duplicates + 1)
                        with m.Elif(header.tag > expected):
                            m.d.sync += self.gaps.eq(self.gaps + 1)
                        m.d.comb += expect_seq_write.en.eq(1)
                        m.d.sync += [
                            src_index.eq(source_index),
                            src_address.eq(header.src),
                            length.eq(header.len),
                            word.eq(0),
                            self.received.eq(self.received + 1),
                        ]
                        m.next = "GET"
            with m.State("GET"):
                with m.If(word == length):
                    m.next = "DECIDE"
                with m.Else():
                    issue(MessageOp.GET)
                    m.next = "GET_WAIT"
            with m.State("GET_WAIT"):
                with m.If(done):
                    seq = expect_seq_word.data - 1
                    with m.If(core.result != expected_word(src_address, me, seq, word)):
                        m.d.sync += self.corrupt.eq(self.corrupt + 1)
                    m.d.sync += word.eq(word + 1)
                    m.next = "GET"
        return m
