"""The host bridge: executes the host link's commands (docs/protocol.md) against the tiles and the network.

Byte streams in and out (the UARTs are outside, see `tessera.hw.host_link.HostLink`), so tests can drive it a
byte per cycle. `tessera.sim.bridge_model.BridgeModel` is its reference.
"""

from amaranth import C, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.crc16 import Crc16
from tessera.hw.message_unit import MessagePortSignature
from tessera.hw.noc_layouts import MAX_WORDS as MESSAGE_WORDS
from tessera.hw.noc_layouts import MessageOp, MessageStatus, ReceivedHeader
from tessera.hw.slip_decoder import SlipDecoder
from tessera.hw.slip_encoder import SlipEncoder
from tessera.hw.tile_bus import TileBusSignature, tile_select_bits
from tessera.os.protocol import (
    MAX_WORDS_LIMIT,
    MIN_FRAME,
    PROTOCOL_VERSION,
    RX_BUFFER_BYTES,
    STATUS_WORDS,
    ChipInfo,
    ConfigRegister,
    Opcode,
    Status,
    max_body,
)

#: Frame buffer layout (one 512 x 8 block RAM): the command frame from 0 (at most max_body(MAX_WORDS_LIMIT) + 1
#: = 254 bytes); from MESSAGE_BASE the pending host-bound message as a push reads it back: the MESSAGE byte 0
#: (initial contents, never written), the push number (written as the message is stored), the stored header word
#: (source node, length, tag), then the words; IDENTIFY's reply payload (initial contents, never written) at
#: IDENTIFY_BASE. Bases with few one bits: loading them into the buffer pointer costs less.
MESSAGE_BASE = RX_BUFFER_BYTES
IDENTIFY_BASE = RX_BUFFER_BYTES + RX_BUFFER_BYTES // 2
BUFFER_BYTES = 2 * RX_BUFFER_BYTES


def at_least(value, bound: int):
    """`value >= bound` for a constant `bound`, as plain logic: Yosys maps a comparison to an iCE40 carry chain
    (a logic cell per bit), this to a few LUT4s (one per three bits)."""
    if bound >> len(value):
        return C(0)
    result = C(1)
    for bit in range(len(value)):  # value[:bit + 1] >= bound[:bit + 1], from the least significant bit up
        result = value[bit] & result if bound >> bit & 1 else value[bit] | result
    return result


class HostBridge(wiring.Component):
    """Parameter: `info` (what IDENTIFY reports; its tile_count, mem_log2, max_words and message_words also size
    the bridge). SEND waits up to 2**(mem_log2 - 2) cycles for the host node's previous message to leave the
    network before it answers NET_BUSY (the wait reuses the address counter).

    Ports: `rx` (bytes from the UART) with `rx_error` (UART framing/overrun pulse), `tx` (bytes to the UART),
    `tiles` (TileBusSignature, initiator), `net` (the host node's message port, driven as a core drives it).

    Relies on: the tile bus's `rdata` and the message port's `result` are 0 outside their own cycle (after `re`;
    the ready cycle, with PUT's result 0 and nothing asked while `valid` is low), so one register input takes both.
    The CRC takes two bits per cycle (Crc16): checking a frame costs ~6 cycles per body byte, sending ~6 per byte
    (both far below a UART byte time; on the byte-stream link they bound the bridge's throughput).

    Contract (the model's): one frame at a time, verified completely (CRC, length) before anything executes;
    every non-empty frame gets one reply; while a frame executes, the UART is held off (bytes then lost are
    reported as LINE_ERROR on the next frame). Messages for the host are taken from the network only while none
    is pending, pushed once, freed by ACK_MESSAGE with their push sequence number and pushed again on REPUSH_MESSAGE
    (or an ACK_MESSAGE with another number).
    """

    def __init__(self, *, info: ChipInfo) -> None:
        if info.protocol_version != PROTOCOL_VERSION:
            raise ValueError(f"info.protocol_version {info.protocol_version} is not this bridge's {PROTOCOL_VERSION}")
        if not 1 <= info.max_words <= MAX_WORDS_LIMIT:
            raise ValueError(f"max_words {info.max_words} out of range 1..{MAX_WORDS_LIMIT} (frame buffer)")
        if info.message_words != MESSAGE_WORDS:
            raise ValueError(f"message_words {info.message_words} differs from the network's {MESSAGE_WORDS}")
        if not 0 <= info.tile_count <= 255:
            raise ValueError(f"tile_count {info.tile_count} out of range 0..255")
        if info.send_destinations == 0:
            raise ValueError("a chip without tiles needs the I/O node (features IO_NODE): the host would reach nothing")
        if info.mem_log2 < 10:
            raise ValueError(f"tile memory of 2**{info.mem_log2} bytes is below the 1 KiB minimum")
        self._info = info
        self._addr_bits = info.mem_log2 - 2
        super().__init__(
            {
                "rx": In(stream.Signature(unsigned(8))),
                "rx_error": In(1),
                "tx": Out(stream.Signature(unsigned(8))),
                "tiles": Out(TileBusSignature(info.tile_count, self._addr_bits)),
                "net": Out(MessagePortSignature),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        info = self._info
        tiles, net = self.tiles, self.net
        limit = max_body(info.max_words)  # longest acceptable body; limit + 1 means "oversize"
        identify_bytes = info.to_bytes()

        m.submodules.decoder = decoder = SlipDecoder()
        m.submodules.encoder = encoder = SlipEncoder()
        m.submodules.crc = crc = Crc16()
        buffer_init = [0] * BUFFER_BYTES
        buffer_init[IDENTIFY_BASE : IDENTIFY_BASE + len(identify_bytes)] = identify_bytes
        buffer_init[MESSAGE_BASE] = (PROTOCOL_VERSION << 5) | Opcode.MESSAGE
        # A read never meets the byte written in the same cycle: the receiver writes only while no frame is held
        # (the check, the execution and the reply read only then), and a push reads from MESSAGE_BASE on while the
        # receiver writes below it and the message store writes with the read port idle. `no_rw_check` tells Yosys
        # so; otherwise it wraps the block RAM in read-during-write emulation (~20 packed logic cells here).
        m.submodules.buffer = buffer = memory.Memory(
            shape=8, depth=BUFFER_BYTES, init=buffer_init, attrs={"no_rw_check": 1}
        )
        wp = buffer.write_port()
        rp = buffer.read_port(domain="sync")
        wiring.connect(m, wiring.flipped(self.rx), decoder.i)
        wiring.connect(m, encoder.o, wiring.flipped(self.tx))
        m.d.comb += [decoder.line_error.eq(self.rx_error), rp.en.eq(0)]

        # ---- receive: fill the buffer with one frame and keep its header ----------------------------------------
        rx_count = Signal(range(limit + 2))  # body bytes so far, saturating at limit + 1
        frame_ready = Signal()
        frame_error = Signal()
        opcode = Signal(5)  # of byte 0 (version << 5 | opcode)
        version_ok = Signal()  # byte 0's version is PROTOCOL_VERSION: one flip-flop, not three
        seq = Signal(8)
        # Of byte 2 only what the bus and SEND's destination use, and the TILE_RANGE check made as it arrives (SEND
        # may also reach the I/O node, right after the tiles: ChipInfo.send_destinations; the bus drops that bit).
        tile = Signal(tile_select_bits(info.send_destinations))
        tile_in_range = Signal()
        release = Signal()  # the frame is answered: receive the next one
        message_write = Signal()  # the message path owns the write port this cycle

        symbol = decoder.o.payload
        take = decoder.o.valid & ~frame_ready & ~message_write
        m.d.comb += decoder.o.ready.eq(take)
        with m.If(take):
            with m.If(symbol.end):
                with m.If((rx_count != 0) | symbol.error):
                    m.d.sync += [frame_ready.eq(1), frame_error.eq(symbol.error)]
            with m.Elif(rx_count != limit + 1):
                m.d.comb += [wp.addr.eq(rx_count), wp.data.eq(symbol.data), wp.en.eq(1)]
                m.d.sync += rx_count.eq(rx_count + 1)
                # Bytes 0 and 1 shift in (byte 0 through `seq`), byte 2 is taken apart.
                with m.If(~at_least(rx_count, 2)):
                    m.d.sync += [
                        Cat(opcode, seq).eq(Cat(seq[:5], symbol.data)),
                        version_ok.eq(seq[5:] == PROTOCOL_VERSION),
                    ]
                with m.If(rx_count == 2):
                    in_range = ~at_least(symbol.data, info.tile_count)
                    if info.send_destinations != info.tile_count:
                        in_range = Mux(opcode == Opcode.SEND, ~at_least(symbol.data, info.send_destinations), in_range)
                    m.d.sync += [tile.eq(symbol.data[: len(tile)]), tile_in_range.eq(in_range)]
        with m.If(release):
            m.d.sync += [frame_ready.eq(0), rx_count.eq(0)]

        # ---- registers of the command being executed --------------------------------------------------------------
        # `word`: the command's first payload word (address / value / tag) after the check, then the word being
        # written, read, staged or stored. Its inputs: a byte shifted in from the buffer at the top (bytes go out at
        # the bottom), a capture of status read data OR the message port's result (each is 0 outside its own cycle:
        # TileBusSignature's and the message port's contracts), or the tile bus's `word_in` shifted in at the top
        # (`word_shift`): a memory word leaves (write) or arrives (read) one bit per cycle through this register.
        word = Signal(32)
        shifted = Cat(word[8:], rp.data)
        count = Signal(8)  # payload byte 4 (READ_MEM's word count)
        # SEND's tag, in two registers that are free by then (`seq` is remembered at the duplicate check): a
        # register with two inputs costs a LUT that packs with its flip-flop, a separate copy a lone flip-flop.
        tag = Cat(count, seq)
        status = Signal(range(max(Status) + 1))
        # The command counts for duplicate detection: it passed the DUPLICATE check, which its status tells (the
        # link errors, BAD_VERSION, UNKNOWN_COMMAND and DUPLICATE come before or from it).
        executed = (status == Status.OK) | (at_least(status, Status.BAD_LENGTH) & (status != Status.DUPLICATE))
        assert Status.BAD_LENGTH == max(Status.LINE_ERROR, Status.OVERSIZE, Status.TRUNCATED, Status.BAD_CRC,
                                        Status.BAD_VERSION, Status.UNKNOWN_COMMAND) + 1
        last_seq = Signal(8)
        # The last executed command's status, taken when its reply is complete; until then it can hold the one
        # payload byte of a NET_FAULT reply (the cause). A DUPLICATE reply's payload byte is the register as it is.
        last_status = Signal(max(5, status.shape().width))
        last_valid = Signal()
        addr = Signal(self._addr_bits)  # tile word address, status word index, or SEND's wait timer
        words_left = Signal(range(max(info.max_words, STATUS_WORDS, 2 + 4 * MESSAGE_WORDS, len(identify_bytes)) + 1))
        ptr = Signal(range(BUFFER_BYTES))  # buffer read / message write pointer
        step = Signal(range(5))  # byte within a fetched, emitted or stored word
        m.d.comb += rp.addr.eq(ptr)

        # ---- the pending host-bound message --------------------------------------------------------------------
        pending = Signal()
        pushed = Signal()
        push_seq = Signal(8)
        # Its length (words after the tag) is not kept in a register: a push reads it back from the stored header
        # word, whose `len` field is in the header byte the status replaces (MESSAGE_BASE + 3).
        len_field = ReceivedHeader["len"]
        assert len_field.offset == 8 and (MESSAGE_WORDS + 1).bit_length() <= len_field.width

        # ---- transmit: one frame through the CRC and the SLIP encoder -------------------------------------------
        # Every byte but END is digested by the CRC before the encoder may take it; the two CRC bytes are both
        # crc[8:], with a flush between them (Crc16). The check of a received frame feeds the CRC the same way
        # (out_byte = the buffer's byte), so the CRC has one data input.
        out_byte = Signal(8)
        out_valid = Signal()
        out_end = Signal()
        out_crc = Signal()  # a CRC byte: not itself digested
        sent = Signal()
        m.d.comb += [
            crc.data.eq(out_byte),
            encoder.i.valid.eq(out_valid & (out_end | out_crc | crc.done)),
            encoder.i.payload.data.eq(out_byte),
            encoder.i.payload.end.eq(out_end),
            sent.eq(encoder.i.valid & encoder.i.ready),
        ]
        with m.If(out_valid & ~out_end & ~out_crc):
            m.d.comb += crc.valid.eq(1)
        with m.If(sent):
            m.d.comb += crc.take.eq(1)
        pushing = Signal()  # the frame being sent is a MESSAGE push, not a reply
        received = Signal()  # the command frame reached the byte being checked, or the header byte being sent
        # Equality, not a comparison: ptr counts up from 0 (both in the check and in a reply's header) and meets
        # rx_count on the way; from there on `received` stays 0.
        past_body = ~received | (ptr == rx_count)

        m.d.comb += [tiles.tile.eq(tile[: len(tiles.tile)]), tiles.addr.eq(addr), tiles.wdata.eq(word)]

        # ---- command decoding, with lengths in terms of the whole body (n = payload + 5) -------------------------
        is_op = {op: opcode == op for op in Opcode}
        m.d.comb += tiles.space.eq(is_op[Opcode.STATUS])  # only READ_MEM and STATUS read: no register needed
        tile_command = Signal()
        m.d.comb += tile_command.eq(
            is_op[Opcode.WRITE_MEM] | is_op[Opcode.READ_MEM] | is_op[Opcode.RESET] | is_op[Opcode.HALT]
            | is_op[Opcode.RUN] | is_op[Opcode.STATUS] | is_op[Opcode.SET_PERMISSIONS]
            | is_op[Opcode.SET_SUPERVISOR] | is_op[Opcode.SET_WATCHDOG] | is_op[Opcode.SEND]
        )
        memory_command = is_op[Opcode.WRITE_MEM] | is_op[Opcode.READ_MEM]
        n = rx_count
        length_ok = Signal()
        with m.Switch(opcode):
            with m.Case(Opcode.WRITE_MEM):
                m.d.comb += length_ok.eq(at_least(n, MIN_FRAME + 8) & (n[:2] == 1))
            with m.Case(Opcode.READ_MEM):
                m.d.comb += length_ok.eq((n == MIN_FRAME + 5) & (count != 0) & ~at_least(count, info.max_words + 1))
            with m.Case(Opcode.SEND):
                m.d.comb += length_ok.eq(
                    (n[:2] == 3) & at_least(n, MIN_FRAME + 6) & ~at_least(n, MIN_FRAME + 3 + 4 * MESSAGE_WORDS)
                )
            with m.Case(Opcode.ACK_MESSAGE):
                m.d.comb += length_ok.eq(n == MIN_FRAME + 1)
            with m.Case(Opcode.SET_PERMISSIONS, Opcode.SET_SUPERVISOR, Opcode.SET_WATCHDOG):
                m.d.comb += length_ok.eq(n == MIN_FRAME + 4)
            with m.Default():
                m.d.comb += length_ok.eq(n == MIN_FRAME)
        # words_left holds the run's word count here (loaded at the check's end): start + count <= memory words.
        # The count has k bits, so a start below the memory's last 2**k words always fits; in that last stretch the
        # run fits when the start's low k bits plus the count reach at most 2**k (a k-bit adder, not a full one).
        k = min(len(words_left), self._addr_bits)
        start = word[2 : info.mem_log2]
        low_end = Signal(k + 1)
        m.d.comb += low_end.eq(start[:k] + words_left)
        run_fits = ~start[k:].all() | ~low_end[k] | (low_end[:k] == 0)
        addr_ok = (word[:2] == 0) & (word[info.mem_log2 :] == 0) & run_fits
        known = ~at_least(opcode, Opcode.REPUSH_MESSAGE + 1)

        # rs1 is `word` (PUT's data; 0 for SEND, whose destination is OR'ed in: `tile`, whose dropped high bits the
        # TILE_RANGE check found 0), rs2 always `tag`.
        sending = Signal()
        m.d.comb += [net.rs1.eq(Cat(word[: len(tile)] | Mux(sending, tile, 0), word[len(tile) :])), net.rs2.eq(tag)]

        # The message port's valid, funct3 and funct7 come straight from flip-flops: the unit's `ready` feeds this
        # FSM's next state, so a state decode in front of the unit would make one long loop (it was the chip's
        # critical path). Each transition into a message state loads its op (`issue`), each one out of it clears
        # them (`issue(None)`), so the port is exactly what a decode of the state would give; funct3 must be 0
        # while valid is low (a QUERY's result is not 0, and `word` captures the result outside the ready cycle).
        issuing = Signal()
        issued_funct3 = Signal(3)
        issued_funct7 = Signal(1)  # the bridge's ops have funct7 0 or 1
        m.d.comb += [net.valid.eq(issuing), net.funct3.eq(issued_funct3), net.funct7.eq(issued_funct7)]

        def issue(op: MessageOp | None, valid=1):
            """The message port of the next state: `op` (while `valid`), or idle."""
            if op is None:
                m.d.sync += [issuing.eq(0), issued_funct3.eq(0), issued_funct7.eq(0)]
            else:
                assert op.funct7 >> len(issued_funct7) == 0
                m.d.sync += [issuing.eq(valid), issued_funct3.eq(op.funct3), issued_funct7.eq(op.funct7)]

        def reply(code=None):
            """Answer now. `status` is OK unless given: it is preset in IDLE (and the checks leave it OK), so most
            answers load nothing."""
            if code is not None:
                m.d.sync += status.eq(code)
            m.next = "TX_START"

        # Datapath steps the states ask for (one adder each; a state's own loads below take priority).
        ptr_inc, step_inc, words_dec, addr_inc = (Signal() for _ in range(4))
        word_shift, word_capture = (Signal() for _ in range(2))
        with m.If(ptr_inc):
            m.d.sync += ptr.eq(ptr + 1)
        with m.If(step_inc):
            m.d.sync += step.eq(step + 1)
        # Every loop counts its words down to 0 and counts a word in a state that does not wait on `net.ready`
        # (so `ready` is not in front of the decrement's carry chain).
        with m.If(words_dec):
            m.d.sync += words_left.eq(words_left - 1)
        with m.If(addr_inc):
            m.d.sync += addr.eq(addr + 1)
        with m.If(word_capture):
            m.d.sync += word.eq(tiles.rdata | net.result)
        with m.Elif(word_shift):
            m.d.sync += word.eq(shifted)
        with m.Elif(tiles.word_shift):
            m.d.sync += word.eq(Cat(word[1:], tiles.word_in))

        with m.FSM():
            with m.State("IDLE"):
                # The presets of the next frame (a push changes `pushing`).
                m.d.sync += [
                    ptr.eq(0),
                    step.eq(0),
                    status.eq(Status.OK),
                    pushing.eq(0),
                    received.eq(1),
                ]
                m.d.comb += crc.clear.eq(1)
                # -- checks, in the model's order: first the link's --
                with m.If(frame_ready):
                    with m.If(frame_error):
                        reply(Status.LINE_ERROR)
                    with m.Elif(rx_count == limit + 1):
                        reply(Status.OVERSIZE)
                    with m.Elif(~at_least(rx_count, MIN_FRAME)):
                        reply(Status.TRUNCATED)
                    with m.Else():
                        m.next = "CHECK_READ"
                with m.Elif(pending & ~pushed):
                    m.d.sync += pushing.eq(1)
                    m.next = "TX_START"
                with m.Elif(~pending):
                    m.next = "POLL"
                    issue(MessageOp.TRYRECV)

            # Read the body back from the buffer: the CRC over all of it (the one CRC unit is free: nothing is
            # sent while a frame is checked), and on the way payload bytes 0..3 (body bytes 3..6) into `word` and
            # payload byte 4 into `count` (stale bytes past a short body are never used).
            with m.State("CHECK_READ"):
                m.d.comb += rp.en.eq(1)
                m.next = "CHECK_BYTE"
                m.d.sync += received.eq(~past_body)
                with m.If(past_body & (ptr[3:] != 0)):  # past the body and past payload byte 4: the CRC is final
                    # The run's word count, for the address check (n = 9 + 4k for WRITE_MEM, 7 + 4k for SEND).
                    m.d.sync += words_left.eq(
                        Mux(is_op[Opcode.READ_MEM], count, n[2:] - Mux(is_op[Opcode.SEND], 1, 2))
                    )
                    with m.If(crc.crc != 0):
                        reply(Status.BAD_CRC)
                    with m.Else():
                        m.next = "CMD_CHECK"
            with m.State("CHECK_BYTE"):
                m.d.comb += [out_byte.eq(rp.data), crc.valid.eq(received)]
                with m.If(crc.done | ~received):
                    m.d.comb += [crc.take.eq(1), ptr_inc.eq(1)]
                    with m.If(~at_least(ptr, 7)):  # bytes 0..2 are shifted out again by 3..6
                        m.d.comb += word_shift.eq(1)
                    with m.If(ptr == 7):
                        m.d.sync += count.eq(rp.data)
                    m.next = "CHECK_READ"
            with m.State("CMD_CHECK"):
                m.d.sync += [addr.eq(word[2:]), step.eq(0)]
                with m.If(~version_ok & ~is_op[Opcode.IDENTIFY]):
                    reply(Status.BAD_VERSION)
                with m.Elif(~known):
                    reply(Status.UNKNOWN_COMMAND)
                with m.Elif(~is_op[Opcode.IDENTIFY] & last_valid & (seq == last_seq)):
                    reply(Status.DUPLICATE)
                with m.Else():
                    m.d.sync += [last_seq.eq(seq), last_valid.eq(1)]
                    with m.If(~length_ok):
                        reply(Status.BAD_LENGTH)
                    with m.Elif(tile_command & ~tile_in_range):
                        reply(Status.TILE_RANGE)
                    with m.Elif(memory_command & ~addr_ok):
                        reply(Status.ADDR_RANGE)
                    with m.Elif(memory_command & tiles.busy):
                        reply(Status.TILE_BUSY)
                    with m.Else():
                        m.next = "EXECUTE"
            with m.State("EXECUTE"):
                m.d.sync += [step.eq(0), ptr.eq(Mux(is_op[Opcode.SEND], 3 + 2, 3 + 4))]  # the first word
                with m.Switch(opcode):
                    with m.Case(Opcode.IDENTIFY):
                        m.d.sync += words_left.eq(len(identify_bytes) - 1)
                        reply()
                    with m.Case(Opcode.WRITE_MEM):
                        m.next = "FETCH"
                    with m.Case(Opcode.READ_MEM):
                        reply()
                    with m.Case(Opcode.STATUS):
                        m.d.sync += [words_left.eq(STATUS_WORDS), addr.eq(0)]
                        reply()
                    with m.Case(Opcode.RESET):
                        m.d.comb += tiles.reset_pc.eq(1)
                        reply()
                    with m.Case(Opcode.HALT):
                        m.d.comb += tiles.halt.eq(1)
                        reply()
                    with m.Case(Opcode.RUN):
                        m.d.comb += tiles.run.eq(1)
                        reply()
                    for op, register in (
                        (Opcode.SET_PERMISSIONS, ConfigRegister.PERMISSIONS),
                        (Opcode.SET_SUPERVISOR, ConfigRegister.SUPERVISOR),
                        (Opcode.SET_WATCHDOG, ConfigRegister.WATCHDOG),
                    ):
                        with m.Case(op):
                            m.d.comb += [tiles.config_we.eq(1), tiles.config_index.eq(register)]
                            reply()
                    with m.Case(Opcode.SEND):
                        m.d.sync += [addr.eq(0), tag.eq(word[:16])]
                        m.next = "NET_WAIT"
                        issue(MessageOp.STATUS)
                    with m.Case(Opcode.ACK_MESSAGE, Opcode.REPUSH_MESSAGE):
                        with m.If(pending):
                            with m.If(is_op[Opcode.ACK_MESSAGE] & (word[:8] == push_seq)):
                                m.d.sync += [pending.eq(0), push_seq.eq(push_seq + 1)]
                            with m.Else():
                                m.d.sync += pushed.eq(0)
                        reply()

            # -- WRITE_MEM and SEND: four buffer bytes into `word`, then use it --
            with m.State("FETCH"):
                m.d.comb += [rp.en.eq(1), step_inc.eq(1)]
                m.d.comb += [ptr_inc.eq(step != 4), word_shift.eq(step != 0)]  # read ahead by one cycle
                with m.If(step == 4):
                    m.d.comb += words_dec.eq(1)
                    m.d.sync += step.eq(0)
                    m.next = "USE_WORD"
                    issue(MessageOp.PUT, valid=is_op[Opcode.SEND])
            with m.State("USE_WORD"):
                with m.If(~is_op[Opcode.SEND]):
                    m.d.comb += tiles.we.eq(1)
                    m.next = "BUS_WRITE"
                with m.Else():  # PUT
                    with m.If(net.ready):
                        issue(None)
                    with m.If(net.ready & net.fault):
                        m.d.sync += last_status.eq(net.cause)
                        reply(Status.NET_FAULT)
                    with m.Elif(net.ready):
                        with m.If(words_left == 0):
                            # PUT's result is 0: the capture clears `word` for SEND's rs1.
                            m.d.comb += word_capture.eq(1)
                            m.next = "NET_SEND"
                            issue(MessageOp.SEND)
                        with m.Else():
                            m.next = "FETCH"
            with m.State("NET_SEND"):
                m.d.comb += sending.eq(1)
                with m.If(net.ready):
                    issue(None)
                with m.If(net.ready & net.fault):
                    m.d.sync += last_status.eq(net.cause)
                    reply(Status.NET_FAULT)
                with m.Elif(net.ready):
                    reply()
            with m.State("BUS_WRITE"):  # the word is shifted out to the tile's serial debug port (33 cycles)
                with m.If(tiles.done):
                    m.d.comb += addr_inc.eq(1)
                    with m.If(words_left == 0):
                        reply()
                    with m.Else():
                        m.next = "FETCH"

            # -- SEND: wait (addr counts up) until the host node's previous message has left --
            with m.State("NET_WAIT"):
                m.d.comb += addr_inc.eq(1)
                with m.If(net.ready & ~MessageStatus(net.result[: MessageStatus.size]).send_busy):
                    m.next = "FETCH"
                    issue(None)
                with m.Elif(addr == (1 << self._addr_bits) - 1):
                    reply(Status.NET_BUSY)
                    issue(None)

            # -- take one message for the host out of the network into the buffer --
            # TRYRECV's answer is looked at a cycle later, from `word` (as the loops count words in states that do
            # not wait on `ready`): `ready` feeds no counter (the host node's mailbox count -> `ready` -> POLL loading
            # words_left was the chip's critical path).
            with m.State("POLL"):
                m.d.sync += [step.eq(0), ptr.eq(MESSAGE_BASE + 1)]
                with m.If(net.ready):
                    m.d.comb += word_capture.eq(1)
                    issue(None)
                    m.next = "POLLED"
            with m.State("POLLED"):
                # The push number goes to MESSAGE_BASE + 1 (harmless if there is no message: nothing is pending). It is
                # the one this message is pushed with: push_seq changes only when the pending message is freed.
                # The whole header word is then stored from MESSAGE_BASE + 2: its low half (src, len) is the push's
                # header bytes 2 and 3 (3 is replaced by the status), its tag the payload's start.
                m.d.comb += [message_write.eq(1), wp.addr.eq(ptr), wp.data.eq(push_seq), wp.en.eq(1), ptr_inc.eq(1)]
                header = ReceivedHeader(word[: ReceivedHeader.size])
                m.d.sync += words_left.eq(header.len)
                with m.If(header.len == 0):  # the result was 0: no message (a header's length is 1..4)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "STORE"
            with m.State("STORE"):
                m.d.comb += [message_write.eq(1), wp.addr.eq(ptr), wp.data.eq(word[:8]), wp.en.eq(1)]
                m.d.comb += [ptr_inc.eq(1), word_shift.eq(1), step_inc.eq(1)]
                with m.If(step == 3):
                    m.d.sync += step.eq(0)
                    with m.If(words_left == 0):
                        m.d.sync += [pending.eq(1), pushed.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += words_dec.eq(1)
                        m.next = "GET"
                        issue(MessageOp.GET)
            with m.State("GET"):
                with m.If(net.ready):
                    m.d.comb += word_capture.eq(1)
                    issue(None)
                    m.next = "STORE"

            # -- transmit a frame: END, header, payload, CRC, END --
            # The header's first three bytes are read back from the buffer like a buffer payload: a reply's from
            # the command frame at 0 (zero where the frame was shorter), a push's from the stored message (0x3F,
            # the push number, then the source node: the low byte of the stored header word). Byte 3 is always
            # `status`.
            with m.State("TX_START"):
                m.d.comb += [out_valid.eq(1), out_end.eq(1), crc.clear.eq(1)]
                m.d.sync += [step.eq(0), ptr.eq(Mux(pushing, MESSAGE_BASE, 0)), received.eq(1)]
                with m.If(sent):
                    m.next = "TX_READ"
            with m.State("TX_READ"):
                m.d.comb += rp.en.eq(1)
                # Registered: off the path to the encoder. It matters for header bytes 0..2 of a reply only.
                m.d.sync += received.eq(~past_body)
                m.next = "TX_BYTE"
            with m.State("TX_BYTE"):
                # rp.data holds the byte at ptr (the read port keeps its output while en = 0).
                header = ~step[2]
                with m.If(header & (step[:2] == 3)):
                    m.d.comb += out_byte.eq(status)
                    with m.If(pushing):  # rp.data is the stored header's `len` byte: the tag's 2 bytes + 4 per word,
                        # less the last one (the loop counts down to 0)
                        m.d.sync += words_left.eq(Cat(C(1, 2), rp.data[: len_field.width]))
                with m.Elif(~header | pushing | received):
                    m.d.comb += out_byte.eq(rp.data)
                m.d.comb += out_valid.eq(1)
                with m.If(sent):
                    m.d.comb += ptr_inc.eq(1)
                    m.next = "TX_READ"
                    with m.If(header):
                        m.d.comb += step_inc.eq(1)
                        with m.If(step[:2] == 3):
                            # What the payload is made of follows from the status and the command (the opcode
                            # is only meaningful with OK; a push's status is OK).
                            answered = ~pushing & (status == Status.OK)
                            with m.If(at_least(status, Status.DUPLICATE)):  # DUPLICATE, NET_FAULT: one byte
                                m.next = "TX_EXTRA"
                            with m.Elif(answered & (is_op[Opcode.READ_MEM] | is_op[Opcode.STATUS])):
                                m.next = "BUS_READ"
                            with m.Elif(answered & is_op[Opcode.IDENTIFY]):
                                m.d.sync += ptr.eq(IDENTIFY_BASE)
                            with m.Elif(~pushing):  # a push goes on with the buffer after its header
                                m.next = "TX_CRC"
                    with m.Else():
                        m.d.comb += words_dec.eq(1)
                        with m.If(words_left == 0):
                            m.next = "TX_CRC"
            with m.State("TX_EXTRA"):
                m.d.comb += [out_valid.eq(1), out_byte.eq(last_status)]
                with m.If(sent):
                    m.next = "TX_CRC"
            with m.State("BUS_READ"):
                m.d.comb += tiles.re.eq(1)
                m.next = "BUS_CAPTURE"
            with m.State("BUS_CAPTURE"):  # a status word comes the next cycle, a memory word (shifted in) ~43 later
                with m.If(tiles.done):
                    m.d.comb += [word_capture.eq(tiles.space), addr_inc.eq(1), words_dec.eq(1)]
                    m.d.sync += step.eq(0)
                    m.next = "BUS_EMIT"
            with m.State("BUS_EMIT"):
                m.d.comb += [out_valid.eq(1), out_byte.eq(word[:8])]
                with m.If(sent):
                    m.d.comb += [word_shift.eq(1), step_inc.eq(1)]
                    with m.If(step == 3):
                        with m.If(words_left == 0):
                            m.next = "TX_CRC"
                        with m.Else():
                            m.next = "BUS_READ"
            # Both CRC bytes, told apart by step[0]: every way here leaves step = 4, the flush makes it 5.
            with m.State("TX_CRC"):
                m.d.comb += [out_valid.eq(1), out_crc.eq(1), out_byte.eq(crc.crc[8:])]
                with m.If(sent):
                    m.next = "TX_CRC_FLUSH"
                    with m.If(step[0]):
                        m.next = "TX_END"
            with m.State("TX_CRC_FLUSH"):
                m.d.comb += [crc.valid.eq(1), crc.flush.eq(1)]
                with m.If(crc.done):
                    m.d.comb += [crc.take.eq(1), step_inc.eq(1)]
                    m.next = "TX_CRC"
            with m.State("TX_END"):
                m.d.comb += [out_valid.eq(1), out_end.eq(1)]
                with m.If(sent):
                    with m.If(pushing):
                        m.d.sync += pushed.eq(1)
                    with m.Else():
                        m.d.comb += release.eq(1)
                        with m.If(executed):
                            m.d.sync += last_status.eq(status)
                    m.next = "IDLE"
        return m
