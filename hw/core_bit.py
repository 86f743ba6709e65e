"""The smallest tile CPU: a bit-serial RV32I core with `TileCore`'s ports, trap model and CSR subset.

Contract: the same as `tessera.hw.core_serial.SerialTileCore` (project brief, docs/isa.md): `TileCore`'s
constructor, signature, architectural results, faults, causes and pcs, with the serial core's stop timing:
`halt` and `fault_in_valid` take effect at the next instruction boundary (at once while SLEEPING or stopped, except
in the cycle the message unit answers: that instruction completes first), `reset_pc` at once.

Microarchitecture (docs/core.md, "The bit-serial core", has the reasoning and the measured figures):
- Every instruction is one or two uniform *passes* of 34 cycles: two cycles that start the register-file
  reads, then 32 cycles that each handle one bit, least significant first, through a 1-bit adder with a carry
  flip-flop. Pass A (compares, addresses, operand capture) never writes anything architectural; pass B writes
  rd and moves pc. Everything that can trap is decided before pass B starts or in its lead cycles, before
  its first write.
- The register file is one block RAM of 512 x 2 bits (address = register * 16 + bit pair). Reads alternate
  rs1 and rs2 pairs, so both sources arrive at one bit per cycle; rd is written a pair at a time, after
  both sources of that pair were read, so rd may be a source.
- pc is a 32-bit ring that rotates once during pass B, taking pc + 4 (a serial incrementer) or the jump
  target (the adder) at its top.
- `dat` (32 bits) is the one whole-word register: shift sources, store data and message rs2 shift into it;
  the instruction word and memory words load into it in parallel and shift out into rd. Shifts and load
  alignment delay its output by a counted number of bits, so there is no funnel or lane multiplexer. Message
  results load into the message rs1 register instead.
- Immediates come from three fixed taps of `dat` while it shifts the instruction word (no immediate register,
  no bit-index multiplexer, no multiplexer in front of the instruction register).
- Counter CSRs are not a 64-bit input: the chip streams its counter one bit per cycle to all tiles
  (`counter_stream`, built once per chip), and a counter read waits at the start of its pass for the frame with
  the half it reads, then writes the streamed bits into rd like any other serial result.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.debug_port import DebugPortSignature
from tessera.hw.core import (
    MemoryBusSignature,
    check_mem_bytes,
    check_tile_id,
    control_members,
    decode_opcode,
    instruction_is_legal,
)

__all__ = ["COUNTER_STREAM_MEMBERS", "BitSerialTileCore", "counter_stream"]

PAIR_BITS = 2  # register-file word width
PAIRS = 32 // PAIR_BITS
PASS_START = 62  # the pass counter starts at -2: two cycles start the reads before bit 0 is computed

#: The counter stream's ports on a consumer (see `counter_stream`).
COUNTER_STREAM_MEMBERS = {"counter_bit": In(1), "counter_start": In(1), "counter_high": In(1)}
FRAME_LEAD = 2  # `counter_start` is raised this many cycles before a frame's bit 0 (the pass's lead cycles)
#: The trap codes the core builds bit by bit from the step that traps (see `own_cause` in the core).
_OWN_CAUSES = {
    Cause.INSN_MISALIGNED: 0b00000,
    Cause.FETCH_FAULT: 0b00001,
    Cause.ILLEGAL_INSN: 0b00010,
    Cause.BREAKPOINT: 0b00011,
    Cause.LOAD_MISALIGNED: 0b00100,
    Cause.LOAD_FAULT: 0b00101,
    Cause.STORE_MISALIGNED: 0b00110,
    Cause.STORE_FAULT: 0b00111,
    Cause.ECALL: 0b01011,
}
assert all(cause == code for cause, code in _OWN_CAUSES.items()), "firmware/isa.py renumbered a cause"


def counter_stream(m: Module, cycle: Value) -> tuple[Signal, Signal, Signal]:
    """Add to `m` the chip's counter stream for bit-serial cores; return (`bit`, `start`, `high`).

    `cycle` is the chip's 64-bit counter. The stream has its own 6-bit `index`, counting cycles from reset (so
    a frozen counter still streams). When the index is 63 a 64-bit snapshot of `cycle` is taken; it is streamed
    out on `bit`, least significant bit first: the low half while the index is 0..31, the high half while it is
    32..63. `start` is 1 `FRAME_LEAD` cycles before a half's bit 0, with `high` telling which half follows.
    Nothing is announced before the first snapshot, so a counter that does not start at 0 is never streamed
    stale. One stream serves every tile (a 64-bit shift register: about one logic cell per bit, once per chip).
    """
    index = Signal(6)
    m.d.sync += index.eq(index + 1)
    snapshot = Signal(64)
    primed = Signal()  # a snapshot has been taken
    with m.If(index == 63):
        m.d.sync += [snapshot.eq(cycle), primed.eq(1)]
    with m.Else():
        m.d.sync += snapshot.eq(snapshot[1:])
    start = Signal()
    high = Signal()
    m.d.comb += [start.eq(primed & (index[0:5] == 32 - FRAME_LEAD)), high.eq(~index[5])]
    return snapshot[0], start, high


class _Step(enum.IntEnum):
    """Sequencer steps. HALTED/TRAPPED are the stopped states, MESSAGE is SLEEPING, all others RUNNING."""

    HALTED = 0
    TRAPPED = 1
    FETCH = 2  # stop if a stop is pending; else read the instruction at pc (or FETCH_FAULT)
    DECODE = 3  # latch and check the instruction
    PASS = 4  # a 34-cycle serial pass (A or B, see `pass_b`)
    CHECK = 5  # load/store address in `addr`: check it; loads read memory
    CAPTURE = 6  # `dat` <- the loaded memory word
    ALIGN = 7  # shift `dat` right by `shamt` bits (right shifts, load byte offset)
    STORE = 8  # write memory
    MESSAGE = 9  # waiting for the message unit
    MESSAGE_DONE = 10  # the unit answered (taken into flip-flops, so its long answer path ends there): trap or rd


class BitSerialTileCore(wiring.Component):
    """Bit-serial RV32I tile core; a drop-in replacement for `tessera.hw.core.TileCore`.

    Parameters: `mem_bytes` (tile memory size, a power of two >= 1024), `tile_id` (read by mhartid),
    `has_message_unit` (custom-0 goes to the `message` port; without it custom-0 is illegal), `memory_waits`
    (the bus is `MemoryBusSignature(..., waits=True)`: a fetch, load or store holds its request until the memory
    takes it, so the memory may be shared; the debug port's accesses, made while the core is stopped, cannot wait).

    Ports, states, faults and CSRs are `TileCore`'s (instret/instreth are illegal, as there), except that the
    64-bit `cycle` input is replaced by the chip's counter stream (`COUNTER_STREAM_MEMBERS`, driven by
    `counter_stream`): a counter CSR read waits (RUNNING; up to 64 cycles, 128 just after reset) for its
    half's frame and returns that half of the stream's latest snapshot. Each read is thus the counter at one
    earlier instant, and later reads see later instants, so the usual cycleh/cycle/cycleh retry loop reads a
    consistent 64-bit value. `retired` pulses once per retired instruction, ECALL and EBREAK included. `halt`
    and `fault_in_valid` are remembered and take effect at the next instruction boundary (immediately while
    SLEEPING or stopped, except in the cycle the message unit answers: that instruction completes first); the pc
    they leave is that of the next instruction, which has not started.
    The core is also the target of the host's serial debug port (`debug`, hw/debug_port.py): while it is stopped,
    the port shifts `dat` and `addr` and reads or writes the memory through `bus`; while it runs, the port is ignored.
    """

    def __init__(self, *, mem_bytes: int, tile_id: int = 0, has_message_unit: bool = False, memory_waits: bool = False):
        addr_width = check_mem_bytes(mem_bytes)
        check_tile_id(tile_id)
        self._mem_bytes = mem_bytes
        self._addr_width = addr_width
        self._tile_id = tile_id
        self._has_message_unit = has_message_unit
        self._memory_waits = memory_waits
        members = control_members(has_message_unit)
        del members["cycle"]
        super().__init__(
            {
                "bus": Out(MemoryBusSignature(addr_width, waits=memory_waits)),
                "debug": In(DebugPortSignature()),
                **members,
                **COUNTER_STREAM_MEMBERS,
            }
        )
        # Reads run one pair ahead of the pair being written (`pair` in elaborate), so a read never meets the pair being
        # written: `no_rw_check` lets Yosys map the block RAM without read-during-write emulation.
        self._registers = memory.Memory(shape=PAIR_BITS, depth=32 * PAIRS, init=[], attrs={"no_rw_check": 1})

    @property
    def mem_bytes(self) -> int:
        return self._mem_bytes

    @property
    def tile_id(self) -> int:
        return self._tile_id

    @property
    def has_message_unit(self) -> bool:
        return self._has_message_unit

    def peek_register(self, ctx, index: int) -> int:
        """Simulation only: the value of register x`index`, assembled from its bit pairs in the register file."""
        if not 0 <= index < 32:
            raise ValueError(f"register index {index} out of range 0..31")
        if index == 0:
            return 0
        data = self._registers.data
        return sum(ctx.get(data[index * PAIRS + pair]) << (PAIR_BITS * pair) for pair in range(PAIRS))

    def elaborate(self, platform):
        m = Module()
        byte_bits = self._addr_width + 2  # address bits inside the tile memory

        # -- state -------------------------------------------------------------------------------------
        step = Signal(_Step, init=_Step.HALTED)
        # step == MESSAGE, kept in a flip-flop of its own: `message.valid` starts the message unit's long path to
        # `ready` and should not begin with a decoder.
        waiting = Signal()
        pass_b = Signal()  # the pass in progress is pass B (writes rd, moves pc)
        t = Signal(6)  # pass counter: 62, 63, then bit t is computed; ALIGN counts the bits it shifts from 32
        ir = Signal(32)
        pc = Signal(32)  # a ring; at rest (outside pass B) it holds the architectural pc
        pc_carry = Signal()
        pc_outside = Signal()  # a bit of pc above the tile memory is set (kept as pc's bits enter the ring)
        carry = Signal()
        less = Signal()
        equal = Signal()
        rs1_pair = Signal(PAIR_BITS)  # rs1's pair, consumed bit 0 first
        rs2_high = Signal()  # rs2's odd bit, kept for the cycle after its pair arrived
        held = Signal()  # rd's even bit, written with the odd one
        dat = Signal(32)
        addr = Signal(byte_bits)
        outside = Signal()  # a load/store address bit above the tile memory was set
        shamt = Signal(5)
        left_on = Signal()  # SLL: the shift amount has been reached, rs1's bits flow
        sign = Signal()  # a load's sign bit
        message_rs1 = Signal(32)  # rs1 for the message unit, then its result on the way to rd
        message_fault = Signal()  # the message unit answered with a fault
        illegal = Signal()  # the instruction decoded last is illegal (the first cycle of its pass traps)
        cause = Signal(5)
        pending_halt = Signal()
        pending_fault = Signal()

        m.submodules.regs = regs = self._registers
        rf_rd = regs.read_port(domain="sync")
        rf_wr = regs.write_port()
        rdat = rf_rd.data

        # -- instruction fields ------------------------------------------------------------------------
        word = self.bus.rdata  # the instruction as it arrives, in DECODE
        f3 = ir[12:15]
        rd = ir[7:12]
        rs1 = ir[15:20]
        rs2 = ir[20:25]

        opcode = decode_opcode(ir, self._has_message_unit)
        is_load, is_store, is_branch = opcode.load, opcode.store, opcode.branch
        is_op, is_op_imm, is_lui, is_auipc = opcode.op, opcode.op_imm, opcode.lui, opcode.auipc
        is_jal, is_jalr, is_system, is_fence, is_custom0 = (
            opcode.jal, opcode.jalr, opcode.system, opcode.misc_mem, opcode.custom0
        )
        is_alu = opcode.alu
        is_shift = is_alu & (f3[0:2] == 0b01)
        is_sll = is_shift & ~f3[2]
        is_slt = is_alu & (f3[1:3] == 0b01)
        is_csr = is_system & (f3 != 0)
        two_pass = is_load | is_store | is_branch | is_slt | is_shift | is_custom0

        bit = t[0:5]  # the bit position computed in this cycle
        computing = ~t[5]
        # In a pass t is 62, 63 or a bit number, so these look at fewer bits of t than a full comparison.
        last = computing & (bit == 31)
        lead_first = t[5] & ~t[0]  # t = PASS_START
        lead_last = t[5] & t[0]  # rs1's first pair arrives; nothing has been computed yet
        # Bit 0 is computed now (used only while computing). A flip-flop, not a decode of t: it starts the carry
        # into the adder, whose sum feeds nearly every register (t = 63 is always followed by t = 0 in a pass).
        first_bit = Signal()
        m.d.sync += first_bit.eq(lead_last)

        # -- the immediate's bit `bit` ---------------------------------------------------------------------
        # DECODE loads the instruction word into `dat` too, and every pass that uses an immediate shifts `dat`
        # right with its top bit repeated (the word's bit 31, the immediate's sign). While bit k is computed,
        # dat[j] holds word[j + k] (word[31] past the top), so three fixed taps give every format: dat[20]
        # (I; S and B from bit 5; J's bits 1..10 and from 20), dat[7] (S and B below bit 5), dat[0] (U from
        # bit 12; J's bits 12..19). Only B's bit 11 (word[7]) and J's bit 11 (word[20]) have left `dat` by
        # then: they come from the instruction register. Branches do not shift `dat` in their pass A.
        # `imm_bit` is a flip-flop loaded one cycle ahead (the format and bit-range decode is off the adder's
        # path, which it had led): in the lead cycles with bit 0 from the unshifted taps; while bit k is
        # computed with bit k + 1 from the taps one place up (every pass that uses the immediate shifts `dat`
        # in each of its bits, so they hold what the taps will hold).
        in_pass = step == _Step.PASS
        format_sb = is_store | is_branch
        format_u = is_lui | is_auipc
        imm_bit = Signal()
        imm_next = Signal()
        m.d.sync += imm_bit.eq(imm_next)
        with m.If(~computing):  # bit 0 comes next
            m.d.comb += imm_next.eq(Mux(format_u | is_branch | is_jal, 0, Mux(is_store, dat[7], dat[20])))
        with m.Elif(format_u):
            m.d.comb += imm_next.eq(Mux(bit.matches("00---", "0100-", "01010"), 0, dat[1]))  # < 11
        with m.Elif(bit == 10):
            m.d.comb += imm_next.eq(Mux(is_branch, ir[7], Mux(is_jal, ir[20], dat[21])))
        with m.Elif(format_sb & bit.matches("000--")):
            m.d.comb += imm_next.eq(dat[8])
        with m.Elif(is_jal & bit.matches("01011", "011--", "1000-", "10010")):  # 11..18
            m.d.comb += imm_next.eq(dat[1])
        with m.Else():
            m.d.comb += imm_next.eq(dat[21])

        # -- operands and the 1-bit ALU ----------------------------------------------------------------
        rs1_bit = rs1_pair[0]
        rs2_bit = Mux(t[0], rs2_high, rdat[0])
        pc_bit = pc[0]
        a = Mux(pass_b & (is_auipc | is_jal | is_branch), pc_bit, Mux(is_lui, 0, rs1_bit))
        b = Mux(~pass_b & is_branch | is_op, rs2_bit, imm_bit)
        sub = ~pass_b & (is_branch | is_slt) | pass_b & is_op & (f3 == 0) & ir[30]
        b_eff = b ^ sub
        carry_in = Mux(first_bit, sub, carry)
        sum_bit = a ^ b_eff ^ carry_in
        carry_out = (a & b_eff) | (carry_in & (a ^ b_eff))
        logic_bit = Mux(f3[1], Mux(f3[0], a & b, a | b), a ^ b)
        alu_bit = Mux(is_alu & f3[2], logic_bit, sum_bit)
        unsigned_compare = Mux(is_branch, f3[1], f3[0])
        less_now = Mux(unsigned_compare, ~carry_out, Mux(a ^ b_eff ^ sub, a, sum_bit))
        taken = Mux(f3[2], less, equal) ^ f3[0]

        # pc + 4, serially, from the bits leaving the ring
        increment_in = (bit == 2) | (pc_carry & ~first_bit)
        link_bit = pc_bit ^ increment_in

        # -- `dat` output for rd: delayed by SLL's amount, cut to a load's width and extended ----------
        in_width = f3[1] | (~bit[4] & (f3[0] | ~bit[3]))
        at_amount = bit == shamt
        sll_flowing = left_on | at_amount
        m.d.sync += left_on.eq(computing & sll_flowing)  # cleared by the lead cycles of every pass
        dat_keep = ~(is_load & ~in_width) & ~(is_sll & ~sll_flowing)
        dat_bit = Mux(dat_keep, dat[0], is_load & sign & ~f3[2])

        # -- register file ports ----------------------------------------------------------------------
        pair = (t[1:5] + 1)[0:4]  # reads run one pair (two cycles) ahead of the computation
        # Stores read rs2 as pairs 0..3 repeated (SB) or 0..7 repeated (SH): the data arrives on every lane.
        rs2_pair = Mux(is_store, Cat(pair[0:2], pair[2] & (f3[0] | f3[1]), pair[3] & f3[1]), pair)
        m.d.comb += [
            rf_rd.en.eq(1),
            rf_rd.addr.eq(Mux(t[0], Cat(rs2_pair, rs2), Cat(pair, rs1))),
        ]
        writes_rd = ~is_branch & ~is_store & ~is_fence  # (ECALL and EBREAK have rd = 0)
        rd_bit = Signal()
        with m.If(is_slt):
            m.d.comb += rd_bit.eq(first_bit & less)
        with m.Elif(is_jal | is_jalr):
            m.d.comb += rd_bit.eq(link_bit)
        with m.Elif(is_csr & ir[29]):  # mhartid: the constant's bit
            m.d.comb += rd_bit.eq(Const(self._tile_id, 32).bit_select(bit, 1))
        with m.Elif(is_custom0):
            m.d.comb += rd_bit.eq(message_rs1[0])
        with m.Elif(is_csr):  # a counter: its frame is streaming now
            m.d.comb += rd_bit.eq(self.counter_bit)
        with m.Elif(is_shift | is_load):
            m.d.comb += rd_bit.eq(dat_bit)
        with m.Else():
            m.d.comb += rd_bit.eq(alu_bit)
        in_pass_b = in_pass & pass_b
        m.d.comb += [
            rf_wr.addr.eq(Cat(t[1:5], rd)),
            rf_wr.data.eq(Cat(held, rd_bit)),
            rf_wr.en.eq(in_pass_b & writes_rd & t[0] & computing & (rd != 0) & ~self.reset_pc),
        ]

        # -- bus ----------------------------------------------------------------------------------------
        stopped = (step == _Step.HALTED) | (step == _Step.TRAPPED)
        debug_loading = Signal()  # a debug read's word arrives: `dat` takes it
        m.d.sync += debug_loading.eq(stopped & self.debug.re)
        m.d.comb += [
            self.bus.addr.eq(Mux(step == _Step.FETCH, pc[2:byte_bits], addr[2:])),
            self.bus.wdata.eq(dat),
            self.bus.wmask.eq(  # a debug write (while stopped) writes the whole word
                Mux(f3[1] | stopped, 0b1111, Mux(f3[0], Mux(addr[1], 0b1100, 0b0011), Const(1, 4) << addr[0:2]))
            ),
            self.bus.we.eq(((step == _Step.STORE) | (stopped & self.debug.we)) & ~self.reset_pc),
            self.debug.data_out.eq(dat[0]),
        ]
        # A fetch, load or store moves on only in the cycle the memory takes it (always, for a memory of its own).
        memory_took = self.bus.ready if self._memory_waits else Const(1)
        if self._memory_waits:
            m.d.comb += self.bus.cannot_wait.eq(stopped)

        access_misaligned = Mux(f3[1], addr[0:2] != 0, f3[0] & addr[0])

        retire = Signal()
        m.d.comb += self.retired.eq(retire & ~self.reset_pc)

        trapping = Signal()  # the core raises a trap of its own (see `own_cause`)

        def trap() -> None:
            m.d.comb += trapping.eq(1)
            m.d.sync += step.eq(_Step.TRAPPED)

        def finish() -> None:
            """The instruction completes (pc already points to the next one): retire it."""
            m.d.comb += retire.eq(1)
            m.d.sync += step.eq(_Step.FETCH)

        def start_pass(second: bool | Signal) -> None:
            m.d.sync += [step.eq(_Step.PASS), pass_b.eq(second), t.eq(PASS_START)]

        # The sign for SRA and for immediates; SRL shifts in zeros (SLL and loads never look at the top bits).
        fill = dat[31] & (ir[30] | ~is_shift)

        # `dat` either shifts right (taking `dat_in` at the top) or loads the memory read data in parallel.
        dat_shift = Signal()
        dat_in = Signal()
        dat_load = Signal()
        with m.If(dat_load):
            m.d.sync += dat.eq(self.bus.rdata)
        with m.Elif(dat_shift):
            m.d.sync += dat.eq(Cat(dat[1:], dat_in))
        # The pc ring, `message_rs1` and `addr` shift right likewise, each under one enable, taking one bit at the top;
        # the sequencer's cases only raise the enable and choose that bit (docs/core.md, Session 6: ~8 cells fewer
        # per tile than the same shifts written out in each case).
        pc_shift = Signal()
        pc_in = Signal()
        with m.If(pc_shift):
            m.d.sync += pc.eq(Cat(pc[1:], pc_in))
        message_rs1_shift = Signal()
        message_rs1_in = Signal()
        with m.If(message_rs1_shift):
            m.d.sync += message_rs1.eq(Cat(message_rs1[1:], message_rs1_in))
        addr_shift = Signal()
        addr_in = Signal()
        m.d.comb += addr_in.eq(sum_bit)
        with m.If(addr_shift):
            m.d.sync += addr.eq(Cat(addr[1:], addr_in))

        # -- the sequencer -----------------------------------------------------------------------------
        with m.Switch(step):
            with m.Case(_Step.HALTED, _Step.TRAPPED):
                # The host's serial debug port (hw/debug_port.py) borrows `dat` and `addr` while the core is stopped:
                # `dat` is the port's word register (the bus's write data already), `addr` its address register.
                debug = self.debug
                m.d.comb += [
                    dat_load.eq(debug_loading),
                    dat_shift.eq(debug.shift),
                    dat_in.eq(debug.data_in),
                    addr_shift.eq(debug.shift),
                    addr_in.eq(debug.addr_in),
                    self.bus.re.eq(debug.re),
                ]
                with m.If(self.run):
                    m.d.sync += [step.eq(_Step.FETCH), pending_halt.eq(0), pending_fault.eq(0)]

            with m.Case(_Step.FETCH):
                with m.If(pending_fault):
                    m.d.sync += [step.eq(_Step.TRAPPED), pending_fault.eq(0), pending_halt.eq(0)]
                with m.Elif(pending_halt):
                    m.d.sync += [step.eq(_Step.HALTED), pending_halt.eq(0)]
                with m.Elif(~pc_outside):
                    m.d.comb += self.bus.re.eq(1)
                    with m.If(memory_took):
                        m.d.sync += step.eq(_Step.DECODE)
                with m.Else():
                    trap()  # FETCH_FAULT

            with m.Case(_Step.DECODE):
                m.d.comb += dat_load.eq(1)  # the immediate's source (see `imm_bit`)
                m.d.sync += [ir.eq(word), shamt.eq(word[20:25])]
                # Pass A first; an instruction that needs no pass A switches to B in the pass's first cycle. CSR
                # reads are one pass. The legality check starts at the memory's output and is long: it only loads
                # `illegal`, and the pass's first cycle traps (before anything is written).
                start_pass(decode_opcode(word, self._has_message_unit).system & word[13])
                m.d.sync += illegal.eq(~instruction_is_legal(m, word, self._has_message_unit))

            with m.Case(_Step.PASS):
                # A counter read (cycle(h)/time(h); mhartid has CSR bit 9 set) holds its first lead cycle until
                # the frame of its half starts FRAME_LEAD cycles later, so bit 0 is computed on the frame's bit 0.
                frame_now = self.counter_start & (self.counter_high == ir[27])
                counter_wait = lead_first & is_csr & ~ir[29] & ~frame_now
                with m.If(~counter_wait):
                    m.d.sync += t.eq(t + 1)
                with m.If(lead_first):
                    m.d.sync += outside.eq(0)
                    with m.If(~two_pass):
                        m.d.sync += pass_b.eq(1)
                    with m.If(illegal):
                        trap()  # ILLEGAL_INSN
                with m.If(t[0]):
                    m.d.sync += rs1_pair.eq(rdat)
                with m.Else():
                    m.d.sync += [rs1_pair.eq(rs1_pair[1]), rs2_high.eq(rdat[1]), held.eq(rd_bit)]
                with m.If(computing):
                    m.d.sync += [carry.eq(carry_out), pc_carry.eq(pc_bit & increment_in)]
                with m.If(~pass_b):
                    with m.If(computing):
                        m.d.sync += [less.eq(less_now), equal.eq(Mux(first_bit, 1, equal) & ~sum_bit)]
                        # The address of a load or store (other instructions leave junk that nothing reads).
                        with m.If(bit < byte_bits):
                            m.d.comb += addr_shift.eq(1)
                        with m.Else():
                            m.d.sync += outside.eq(outside | sum_bit)
                        with m.If(is_custom0):
                            m.d.comb += [message_rs1_shift.eq(1), message_rs1_in.eq(rs1_bit)]
                            m.d.comb += [dat_shift.eq(1), dat_in.eq(rs2_bit)]
                        with m.Elif(is_shift):  # rs1 into `dat`; SLL/SRL/SRA take their amount from rs2
                            m.d.comb += [dat_shift.eq(1), dat_in.eq(rs1_bit)]
                            with m.If(is_op & (bit < 5)):
                                m.d.sync += shamt.eq(Cat(shamt[1:], rs2_bit))
                        with m.Elif(~is_branch):  # the immediate (loads, stores, SLTI); a branch keeps it
                            m.d.comb += [dat_shift.eq(1), dat_in.eq(fill)]
                    with m.If(last):
                        with m.If(is_load | is_store):
                            m.d.sync += step.eq(_Step.CHECK)
                        with m.Elif(is_custom0):
                            m.d.sync += [step.eq(_Step.MESSAGE), waiting.eq(1)]
                        with m.Elif(is_shift & f3[2]):
                            m.d.sync += step.eq(_Step.ALIGN)  # t goes on to 32: ALIGN's bit 0
                        with m.Else():
                            start_pass(True)
                with m.Else():
                    # A jump's target bit 1 is known before anything is written: for JAL and branches it is
                    # imm[1] (pc is aligned), for JALR it comes from rs1's first pair, arriving now.
                    jalr_target_bit1 = rdat[1] ^ ir[21] ^ (rdat[0] & ir[20])
                    misaligned = (is_jal & ir[21]) | (is_jalr & jalr_target_bit1) | (is_branch & taken & ir[8])
                    with m.If(lead_last & misaligned):
                        trap()  # INSN_MISALIGNED
                    with m.If(computing):
                        jump = is_jal | is_jalr | (is_branch & taken)
                        entering = Mux(jump, sum_bit & (bit != 0), link_bit)
                        m.d.comb += [pc_shift.eq(1), pc_in.eq(entering)]
                        with m.If(bit >= byte_bits):
                            m.d.sync += pc_outside.eq(Mux(bit == byte_bits, 0, pc_outside) | entering)
                        with m.If(is_shift & ~f3[2]):
                            with m.If(sll_flowing):
                                m.d.comb += [dat_shift.eq(1), dat_in.eq(fill)]
                        with m.Elif(is_store):
                            m.d.comb += [dat_shift.eq(1), dat_in.eq(rs2_bit)]
                        with m.Else():
                            m.d.comb += [dat_shift.eq(1), dat_in.eq(fill)]
                        with m.If(is_custom0):
                            m.d.comb += message_rs1_shift.eq(1)  # zeros come in
                        with m.If(in_width):
                            m.d.sync += sign.eq(dat[0])
                    with m.If(last):
                        with m.If(is_store):
                            m.d.sync += step.eq(_Step.STORE)
                        with m.Elif(is_system & (f3 == 0)):  # ECALL / EBREAK: retire, stop with pc past them
                            m.d.comb += retire.eq(1)
                            trap()  # ECALL / BREAKPOINT
                        with m.Else():
                            finish()

            with m.Case(_Step.CHECK):
                with m.If(access_misaligned | outside):
                    trap()  # {LOAD, STORE}_{MISALIGNED, FAULT}
                with m.Elif(is_store):
                    start_pass(True)
                with m.Else():
                    m.d.comb += self.bus.re.eq(1)
                    with m.If(memory_took):
                        m.d.sync += step.eq(_Step.CAPTURE)

            with m.Case(_Step.CAPTURE):
                m.d.comb += dat_load.eq(1)
                # t has stood at 32 since pass A ended: ALIGN counts its bits from there
                m.d.sync += [shamt.eq(Cat(Const(0, 3), addr[0:2])), step.eq(_Step.ALIGN)]

            with m.Case(_Step.ALIGN):
                with m.If(at_amount):
                    start_pass(True)
                with m.Else():
                    m.d.comb += [dat_shift.eq(1), dat_in.eq(fill)]
                    m.d.sync += t.eq(t + 1)

            with m.Case(_Step.STORE):
                with m.If(memory_took):
                    finish()

            if self._has_message_unit:
                with m.Case(_Step.MESSAGE):
                    with m.If(self.message.ready):
                        m.d.sync += [message_fault.eq(self.message.fault), step.eq(_Step.MESSAGE_DONE), waiting.eq(0)]
                        with m.If(self.message.fault):
                            m.d.sync += cause.eq(self.message.cause)
                with m.Case(_Step.MESSAGE_DONE):
                    with m.If(message_fault):
                        m.d.sync += step.eq(_Step.TRAPPED)  # `cause` holds the unit's cause already
                    with m.Else():
                        start_pass(True)

        if self._has_message_unit:
            # Outside the step switch, so that `ready` reaches the load enable through one gate.
            with m.If(waiting & self.message.ready):
                m.d.sync += message_rs1.eq(self.message.result)
            # The operands and function fields are only meaningful with `valid`: no gating (it costs a LUT a bit).
            m.d.comb += [
                self.message.valid.eq(waiting),
                self.message.funct3.eq(f3),
                self.message.funct7.eq(ir[25:32]),
                self.message.rs1.eq(message_rs1),
                self.message.rs2.eq(dat),
            ]

        # The cause of a trap the core raises follows from the step that raises it, so `cause` needs no
        # multiplexer input per trap site: FETCH: FETCH_FAULT (1); PASS: ILLEGAL_INSN (2) if `illegal`, else
        # ECALL (11) or BREAKPOINT (3) for SYSTEM, else INSN_MISALIGNED (0); CHECK: 0b1 store outside
        # (LOAD_MISALIGNED 4 .. STORE_FAULT 7, misaligned winning); MESSAGE: the message unit's cause.
        in_check = step == _Step.CHECK
        system_stop = in_pass & is_system & ~illegal
        own_cause = Cat(
            (step == _Step.FETCH) | system_stop | (in_check & ~access_misaligned),
            (in_pass & (is_system | illegal)) | (in_check & is_store),
            in_check,
            system_stop & ~ir[20],
            Const(0, 1),
        )
        with m.If(trapping):
            m.d.sync += cause.eq(own_cause)

        # -- requests from outside (later assignments win) ---------------------------------------------
        # While SLEEPING nothing of the message instruction has happened yet, except in the cycle the unit answers: its
        # effect (a message taken, a word sent) is then done, so the instruction completes and the stop waits for it.
        abandonable = stopped | ((step == _Step.MESSAGE) & ~self.message.ready) if self._has_message_unit else stopped
        with m.If(self.reset_pc):
            m.d.sync += [pc.eq(0), pc_outside.eq(0), cause.eq(0), step.eq(_Step.HALTED)]
            m.d.sync += [pending_halt.eq(0), pending_fault.eq(0), waiting.eq(0)]
        with m.Elif(self.fault_in_valid):
            m.d.sync += cause.eq(self.fault_in_cause)
            with m.If(abandonable):
                m.d.sync += [step.eq(_Step.TRAPPED), waiting.eq(0)]
            with m.Else():
                m.d.sync += pending_fault.eq(1)
        with m.Elif(self.halt & ~stopped):
            with m.If(abandonable):
                m.d.sync += [step.eq(_Step.HALTED), waiting.eq(0)]
            with m.Else():
                m.d.sync += pending_halt.eq(1)

        # -- status ------------------------------------------------------------------------------------
        with m.Switch(step):
            with m.Case(_Step.HALTED):
                m.d.comb += self.state.eq(TileState.HALTED)
            with m.Case(_Step.TRAPPED):
                m.d.comb += self.state.eq(TileState.TRAPPED)
            with m.Case(_Step.MESSAGE):
                m.d.comb += self.state.eq(TileState.SLEEPING)
            with m.Default():
                m.d.comb += self.state.eq(TileState.RUNNING)
        m.d.comb += [self.cause.eq(cause), self.pc.eq(pc)]
        return m
