"""The compact tile CPU: a nibble-serial RV32I core with `TileCore`'s ports, trap model and CSR subset.

Contract: the same as `tessera.hw.core.TileCore` (project brief, docs/isa.md): same constructor parameters,
same signature, same architectural results, faults, causes and pcs. One difference in timing only, stated in
docs/core.md: `halt` and `fault_in_valid` take effect at the next instruction boundary (at most one
instruction later) instead of in the cycle they arrive, except while the core waits for its message unit
(SLEEPING), where they take effect at once. `reset_pc` always takes effect at once.

Microarchitecture (docs/core.md, "The nibble-serial core", has the reasoning and the measured figures):
- Every 32-bit value moves four bits (one "digit") per cycle, least significant first, through a 4-bit adder
  with a carry flip-flop.
- The register file is one block RAM: 256 x 4 bits, address = register * 8 + digit, one synchronous read
  port and one write port. Two-source instructions read rs1 and rs2 digits in alternate cycles; a result digit
  is written as soon as both source digits of that position have been read, so rd may equal a source.
- `stream` (32 bits) collects serial results that are needed whole (addresses, jump targets, store data,
  message operands) and holds whole words that are written back serially (load data, CSR values, message
  results).
- pc is a 32-bit ring that rotates by one digit per cycle during exactly one 8-digit pass of each
  instruction: the pass that reads it (AUIPC, JAL, branch target) and the pass that writes it (+4, or a jump
  target) coincide with a pass the instruction needs anyway, so pc costs no parallel incrementer or
  multiplexer. The pass that changes pc follows every check that could trap, and stops wait for the
  instruction boundary, so outside the instruction pc is always aligned and architectural.
- Shifts read the source digits in the order the result needs them (register-file addressing does the
  digit-granular part) and a 0..4-bit funnel does the rest.
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from tessera.firmware.isa import Cause, TileState
from tessera.hw.core import (
    MemoryBusSignature,
    check_mem_bytes,
    check_tile_id,
    control_members,
    decode_opcode,
    instruction_is_legal,
)

__all__ = ["SerialTileCore"]

DIGIT = 4  # bits per serial step
DIGITS = 32 // DIGIT


class _Step(enum.IntEnum):
    """Sequencer steps. HALTED/TRAPPED are the stopped states, MESSAGE is SLEEPING, all others RUNNING."""

    HALTED = 0
    TRAPPED = 1
    FETCH = 2  # stop if a stop is pending; else read the instruction at pc (or FETCH_FAULT)
    DECODE = 3  # latch and check the instruction; read the first source digit
    EXECUTE = 4  # the main serial pass: ALU into rd, compare, address or jump target into `stream`
    SLT_WRITE = 5  # SLT(I)(U): write the comparison into rd digit 0 (digits 1..7 were written 0)
    TARGET = 6  # branch: pc <- pc + imm if taken (a misaligned target traps), else pc + 4
    LINK = 7  # JAL/JALR: rd <- pc + 4
    INCREMENT = 8  # pc + 4 for instructions without another pass: ECALL, EBREAK, FENCE
    MEM_CHECK = 9  # load/store address in `stream`: check it, keep it in `mem_addr`
    LOAD_READ = 10  # read the memory word
    CAPTURE = 11  # `stream` <- memory word or CSR value
    ALIGN = 12  # move the loaded byte/halfword to digit 0
    WRITE_BACK = 13  # rd <- `stream`, zero- or sign-extended
    STORE_DATA = 14  # `stream` <- rs2, its byte or halfword repeated across the word
    STORE = 15  # write memory
    SHIFT_AMOUNT = 16  # SLL/SRL/SRA: read rs2[4:0]
    SHIFT = 17  # shift rs1 into rd
    MESSAGE = 18  # waiting for the message unit


class SerialTileCore(wiring.Component):
    """Nibble-serial RV32I tile core; a drop-in replacement for `tessera.hw.core.TileCore`.

    Parameters: `mem_bytes` (tile memory size, a power of two >= 1024), `tile_id` (read by mhartid),
    `has_message_unit` (custom-0 goes to the `message` port; without it custom-0 is illegal).

    Ports, states, faults and CSRs are `TileCore`'s (instret/instreth are illegal, as there). `retired` pulses
    once per retired instruction, ECALL and EBREAK included. `halt` and `fault_in_valid` are remembered and
    take effect at the next instruction boundary (immediately while SLEEPING or stopped, except in the cycle the
    message unit answers: that instruction completes first); the pc they leave is that of the next instruction,
    which has not started.
    """

    def __init__(self, *, mem_bytes: int, tile_id: int = 0, has_message_unit: bool = False):
        addr_width = check_mem_bytes(mem_bytes)
        check_tile_id(tile_id)
        self._mem_bytes = mem_bytes
        self._addr_width = addr_width
        self._tile_id = tile_id
        self._has_message_unit = has_message_unit
        super().__init__({"bus": Out(MemoryBusSignature(addr_width)), **control_members(has_message_unit)})
        self._registers = memory.Memory(shape=DIGIT, depth=32 * DIGITS, init=[])

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
        """Simulation only: the value of register x`index`, assembled from its digits in the register file."""
        if not 0 <= index < 32:
            raise ValueError(f"register index {index} out of range 0..31")
        if index == 0:
            return 0
        data = self._registers.data
        return sum(ctx.get(data[index * DIGITS + digit]) << (DIGIT * digit) for digit in range(DIGITS))

    def elaborate(self, platform):
        m = Module()
        byte_bits = self._addr_width + 2  # address bits inside the tile memory

        # -- state -------------------------------------------------------------------------------------
        step = Signal(_Step, init=_Step.HALTED)
        pc = Signal(32)  # a ring of 8 digits; bits 1..0 are 0 whenever it is at rest
        pc_carry = Signal()  # carry of the serial pc + 4
        ir = Signal(32)
        count = Signal(4)  # digit counter of a pass (SHIFT counts to 9)
        second = Signal()  # two-source passes: 0 = rs1 digit arriving, 1 = rs2 digit arriving
        carry = Signal()
        rs1_digit = Signal(DIGIT)  # rs1 digit kept while the rs2 digit is read
        less = Signal()  # comparison flags, valid after a compare pass
        equal = Signal()
        stream = Signal(32)
        mem_addr = Signal(byte_bits)
        shamt = Signal(5)
        sign = Signal()  # the sign bit for SRA and signed loads
        prev_digit = Signal(DIGIT)  # SHIFT: the digit read before the current one
        beyond = Signal()  # SHIFT: the arriving digit lies outside the source register
        top_digit = Signal()  # SHIFT: the arriving digit is the source's digit 7
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
        is_jal, is_jalr, is_system, is_custom0 = opcode.jal, opcode.jalr, opcode.system, opcode.custom0
        is_alu = opcode.alu
        is_slt = is_alu & (f3[1:3] == 0b01)
        two_sources = is_op | is_branch | is_custom0

        digit = count[0:3]
        first_digit = digit == 0
        last_digit = digit == DIGITS - 1

        # -- operands ----------------------------------------------------------------------------------
        # The immediate's digit `digit`, straight from the instruction's fields (formats I, S, B, U, J).
        sign4 = ir[31].replicate(DIGIT)
        format_u = is_lui | is_auipc
        format_sb = is_store | is_branch
        imm_digit = Signal(DIGIT)
        with m.Switch(digit):
            with m.Case(0):
                bit0 = Mux(format_sb, ir[7] & is_store, ir[20] & ~is_jal)
                m.d.comb += imm_digit.eq(Mux(format_u, 0, Cat(bit0, Mux(format_sb, ir[8:11], ir[21:24]))))
            with m.Case(1):
                m.d.comb += imm_digit.eq(Mux(format_u, 0, Cat(Mux(format_sb, ir[11], ir[24]), ir[25:28])))
            with m.Case(2):
                bit11 = Mux(is_branch, ir[7], Mux(is_jal, ir[20], ir[31]))
                m.d.comb += imm_digit.eq(Mux(format_u, 0, Cat(ir[28:31], bit11)))
            with m.Case(3, 4):
                m.d.comb += imm_digit.eq(Mux(format_u | is_jal, ir.word_select(digit, DIGIT), sign4))
            with m.Default():
                m.d.comb += imm_digit.eq(Mux(format_u, ir.word_select(digit, DIGIT), sign4))
        pc_digit = pc[0:DIGIT]

        op_a = Signal(DIGIT)
        op_b = Signal(DIGIT)
        sub = Signal()  # subtract: B inverted, carry in 1 at digit 0
        with m.Switch(step):
            with m.Case(_Step.EXECUTE):
                m.d.comb += [
                    op_a.eq(Mux(is_auipc | is_jal, pc_digit, Mux(is_lui, 0, Mux(two_sources, rs1_digit, rdat)))),
                    op_b.eq(Mux(two_sources, rdat, imm_digit)),
                    sub.eq(is_branch | is_slt | (is_op & (f3 == 0) & ir[30])),
                ]
            with m.Case(_Step.TARGET):
                m.d.comb += [op_a.eq(pc_digit), op_b.eq(imm_digit)]
            with m.Case(_Step.LINK):
                m.d.comb += [op_a.eq(pc_digit), op_b.eq(Mux(first_digit, 4, 0))]
        b_eff = op_b ^ sub.replicate(DIGIT)
        carry_in = Mux(first_digit, sub, carry)
        total = Signal(DIGIT + 1)
        m.d.comb += total.eq(op_a + b_eff + carry_in)
        sum_digit = total[0:DIGIT]
        carry_out = total[DIGIT]
        logic_digit = Mux(f3[1], Mux(f3[0], op_a & op_b, op_a | op_b), op_a ^ op_b)
        alu_digit = Mux(is_alu & f3[2], logic_digit, sum_digit)

        unsigned_compare = Mux(is_branch, f3[1], f3[0])
        top = DIGIT - 1
        less_signed = Mux(op_a[top] ^ b_eff[top] ^ sub, op_a[top], sum_digit[top])
        less_now = Mux(unsigned_compare, ~carry_out, less_signed)
        equal_now = Mux(first_digit, 1, equal) & (sum_digit == 0)

        # -- shifter: digits arrive in result order; a funnel shifts by the remaining 0..3 bits ---------
        shift_left = ~f3[2]
        digit_mirror = Mux(shift_left, DIGITS - 1, 0)  # left shifts walk the digits from the top
        shift_read = Signal(4)
        m.d.comb += shift_read.eq(shamt[2:5] + count)  # bit 3 set: the digit lies outside the register
        fill = (ir[30] & ~shift_left & sign).replicate(DIGIT)
        current_digit = Mux(beyond, fill, rdat)
        funnel_amount = Mux(shift_left, (DIGIT - shamt[0:2]).as_unsigned()[0:3], shamt[0:2])
        funnel_in = Mux(shift_left, Cat(current_digit, prev_digit), Cat(prev_digit, current_digit))
        shift_digit = (funnel_in >> funnel_amount)[0:DIGIT]

        # -- write-back of whole words from `stream` (loads, CSR values, message results) ----------------
        whole_word = f3[1] | is_custom0
        extending = ~whole_word & (count[2] | (count[1] & ~f3[0]))
        load_digit = Mux(extending, (sign & ~f3[2]).replicate(DIGIT), stream[0:DIGIT])

        csr_value = Mux(ir[29], self._tile_id, Mux(ir[27], self.cycle[32:64], self.cycle[0:32]))

        # -- register file ports ----------------------------------------------------------------------
        read_rs2 = Signal()
        read_digit = Signal(3)
        arriving = decode_opcode(word, self._has_message_unit)  # the instruction arriving in DECODE
        word_shift_by_register = arriving.op & (word[12:14] == 0b01)
        m.d.comb += [
            rf_rd.en.eq(1),
            rf_rd.addr.eq(
                Cat(
                    read_digit,
                    Mux(
                        step == _Step.DECODE,
                        Mux(word_shift_by_register, word[20:25], word[15:20]),
                        Mux(read_rs2, rs2, rs1),
                    ),
                )
            ),
        ]
        rd_write = Signal()
        write_digit = Signal(3)
        write_data = Signal(DIGIT)
        stop_now = self.reset_pc
        m.d.comb += [
            rf_wr.addr.eq(Cat(write_digit, rd)),
            rf_wr.data.eq(write_data),
            rf_wr.en.eq(rd_write & (rd != 0) & ~stop_now),
        ]

        # `stream` shifts right by one digit when `stream_shift` is set, taking `stream_in` at the top.
        stream_shift = Signal()
        stream_in = Signal(DIGIT)
        stream_next = Signal(32)
        m.d.comb += stream_next.eq(Mux(stream_shift, Cat(stream[DIGIT:], stream_in), stream))
        m.d.sync += stream.eq(stream_next)

        # pc rotates right by one digit when `pc_shift` is set, taking `pc_in` at the top: its own digit
        # (+ 4 with `pc_increment`), a branch target digit from the adder, or a jump target digit from `stream`.
        pc_shift = Signal()
        pc_increment = Signal()
        pc_from_sum = Signal()
        pc_from_stream = Signal()
        incremented = Signal(DIGIT + 1)
        m.d.comb += incremented.eq(pc_digit + Mux(first_digit, Mux(pc_increment, 4, 0), pc_carry))
        pc_in = Mux(pc_from_sum, sum_digit, Mux(pc_from_stream, stream[0:DIGIT], incremented[0:DIGIT]))
        with m.If(pc_shift):
            # A target's bits 1..0 are cleared as it enters (bit 1 was checked, bit 0 is JALR's to drop).
            entering = pc_in & Mux(first_digit, 0b1100, 0b1111)
            m.d.sync += [pc.eq(Cat(pc[DIGIT:], entering)), pc_carry.eq(incremented[DIGIT])]

        m.d.comb += [
            self.bus.addr.eq(Mux(step == _Step.FETCH, pc[2:], mem_addr[2:])),
            self.bus.wdata.eq(stream),
            self.bus.wmask.eq(
                Mux(f3[1], 0b1111, Mux(f3[0], Mux(mem_addr[1], 0b1100, 0b0011), Const(1, 4) << mem_addr[0:2]))
            ),
            self.bus.we.eq((step == _Step.STORE) & ~stop_now),
        ]

        retire = Signal()
        m.d.comb += self.retired.eq(retire & ~stop_now)

        def trap(code) -> None:
            m.d.sync += [cause.eq(code), step.eq(_Step.TRAPPED)]

        def finish() -> None:
            """The instruction completes (pc already points to the next one): retire it."""
            m.d.comb += retire.eq(1)
            m.d.sync += step.eq(_Step.FETCH)

        def start_pass(next_step: _Step) -> None:
            m.d.sync += [step.eq(next_step), count.eq(0), second.eq(0)]

        computing = ~two_sources | second  # EXECUTE: both source digits of this position are here
        message_rs1 = Signal(32)  # rs1 for the message unit (`stream` collects rs2)

        # -- the sequencer -----------------------------------------------------------------------------
        with m.Switch(step):
            with m.Case(_Step.HALTED, _Step.TRAPPED):
                with m.If(self.run):
                    m.d.sync += [step.eq(_Step.FETCH), pending_halt.eq(0), pending_fault.eq(0)]

            with m.Case(_Step.FETCH):
                with m.If(pending_fault):
                    m.d.sync += [step.eq(_Step.TRAPPED), pending_fault.eq(0), pending_halt.eq(0)]
                with m.Elif(pending_halt):
                    m.d.sync += [step.eq(_Step.HALTED), pending_halt.eq(0)]
                with m.Elif(pc[byte_bits:] == 0):
                    m.d.comb += self.bus.re.eq(1)
                    m.d.sync += step.eq(_Step.DECODE)
                with m.Else():
                    trap(Cause.FETCH_FAULT)

            with m.Case(_Step.DECODE):
                # Reads digit 0 of rs1 (of rs2 for register shifts) for the pass that follows.
                m.d.sync += [ir.eq(word), shamt.eq(word[20:25]), count.eq(0), second.eq(0)]
                word_f3 = word[12:15]
                with m.If(~instruction_is_legal(m, word, self._has_message_unit)):
                    trap(Cause.ILLEGAL_INSN)
                with m.Elif(arriving.system):
                    m.d.sync += step.eq(Mux(word_f3 == 0, _Step.INCREMENT, _Step.CAPTURE))
                with m.Elif(arriving.misc_mem):
                    m.d.sync += step.eq(_Step.INCREMENT)
                with m.Elif(word_shift_by_register):
                    m.d.sync += step.eq(_Step.SHIFT_AMOUNT)
                with m.Elif(arriving.op_imm & (word[12:14] == 0b01)):
                    m.d.sync += step.eq(_Step.SHIFT)
                with m.Else():
                    m.d.sync += step.eq(_Step.EXECUTE)

            with m.Case(_Step.EXECUTE):
                m.d.comb += [
                    read_rs2.eq(two_sources & ~second),
                    read_digit.eq(Mux(two_sources & ~second, digit, digit + 1)),
                    write_digit.eq(digit),
                    write_data.eq(Mux(is_slt, 0, alu_digit)),
                    stream_in.eq(Mux(is_custom0, rdat, sum_digit)),
                ]
                m.d.sync += second.eq(two_sources & ~second)
                with m.If(~computing):
                    m.d.sync += rs1_digit.eq(rdat)
                with m.Else():
                    m.d.sync += [carry.eq(carry_out), less.eq(less_now), equal.eq(equal_now), count.eq(count + 1)]
                    m.d.comb += [
                        rd_write.eq((is_alu | is_lui | is_auipc) & ~(is_slt & first_digit)),
                        stream_shift.eq(is_jal | is_jalr | is_load | is_store | is_custom0),
                    ]
                    # A jump's target bit 1 is known with its first digit (for JAL it is imm[1], as pc is
                    # aligned): a misaligned jump stops here, before it links.
                    # For JALR it is bit 1 of rs1 + imm, taken from the operands rather than from the adder.
                    jalr_target_bit1 = rdat[1] ^ ir[21] ^ (rdat[0] & ir[20])
                    misaligned_jump = first_digit & ((is_jal & ir[21]) | (is_jalr & jalr_target_bit1))
                    # Passes that read pc rotate it; ALU instructions (which cannot trap) also advance it.
                    # (The rotation's enable does not wait for the adder: it is on a long path otherwise.)
                    m.d.comb += [
                        pc_shift.eq(is_alu | is_lui | is_auipc | is_branch | (is_jal & ~(first_digit & ir[21]))),
                        pc_increment.eq(~is_branch & ~is_jal),
                    ]
                    with m.If(misaligned_jump):
                        trap(Cause.INSN_MISALIGNED)
                    with m.Elif(last_digit):
                        with m.If(is_slt):
                            m.d.sync += step.eq(_Step.SLT_WRITE)
                        with m.Elif(is_branch):
                            start_pass(_Step.TARGET)
                        with m.Elif(is_jal | is_jalr):
                            start_pass(_Step.LINK)
                        with m.Elif(is_load | is_store):
                            m.d.sync += step.eq(_Step.MEM_CHECK)
                        with m.Elif(is_custom0):
                            m.d.sync += step.eq(_Step.MESSAGE)
                        with m.Else():
                            finish()
                if self._has_message_unit:
                    with m.If(is_custom0 & ~second):
                        m.d.sync += message_rs1.eq(Cat(message_rs1[DIGIT:], rdat))

            with m.Case(_Step.SLT_WRITE):
                m.d.comb += [write_digit.eq(0), write_data.eq(less), rd_write.eq(1)]
                finish()

            with m.Case(_Step.TARGET):
                # pc <- branch target if taken (from the flags the compare left), else pc + 4.
                taken = Mux(f3[2], less, equal) ^ f3[0]
                m.d.sync += [carry.eq(carry_out), count.eq(count + 1)]
                with m.If(taken & first_digit & ir[8]):  # target bit 1 = imm[1], as pc is aligned
                    trap(Cause.INSN_MISALIGNED)
                with m.Else():
                    m.d.comb += [pc_shift.eq(1), pc_from_sum.eq(taken), pc_increment.eq(1)]
                    with m.If(last_digit):
                        finish()

            with m.Case(_Step.LINK):
                # rd <- pc + 4 from the digits leaving the ring while the target enters it from `stream`.
                m.d.comb += [
                    write_digit.eq(digit),
                    write_data.eq(sum_digit),
                    rd_write.eq(1),
                    pc_shift.eq(1),
                    pc_from_stream.eq(1),
                    stream_shift.eq(1),
                ]
                m.d.sync += [carry.eq(carry_out), count.eq(count + 1)]
                with m.If(last_digit):
                    finish()

            with m.Case(_Step.INCREMENT):
                m.d.comb += [pc_shift.eq(1), pc_increment.eq(1)]
                m.d.sync += count.eq(count + 1)
                with m.If(last_digit):
                    with m.If(is_system):  # ECALL / EBREAK: retire, stop with pc past them
                        m.d.comb += retire.eq(1)
                        trap(Mux(ir[20], Cause.BREAKPOINT, Cause.ECALL))
                    with m.Else():  # FENCE, FENCE.I
                        finish()

            with m.Case(_Step.MEM_CHECK):
                # Reads digit 0 of rs2 for STORE_DATA.
                m.d.comb += [read_rs2.eq(1), read_digit.eq(0)]
                m.d.sync += [mem_addr.eq(stream[0:byte_bits]), count.eq(0)]
                misaligned = Mux(f3[1], stream[0:2] != 0, f3[0] & stream[0])
                outside = stream[byte_bits:] != 0
                with m.If(misaligned):
                    trap(Mux(is_store, Cause.STORE_MISALIGNED, Cause.LOAD_MISALIGNED))
                with m.Elif(outside):
                    trap(Mux(is_store, Cause.STORE_FAULT, Cause.LOAD_FAULT))
                with m.Else():
                    m.d.sync += step.eq(Mux(is_store, _Step.STORE_DATA, _Step.LOAD_READ))

            with m.Case(_Step.LOAD_READ):
                m.d.comb += self.bus.re.eq(1)
                m.d.sync += step.eq(_Step.CAPTURE)

            with m.Case(_Step.CAPTURE):
                # Loads: the word arrives; ALIGN moves the addressed byte/halfword down by 2 digits per byte.
                m.d.sync += [
                    stream.eq(Mux(is_system, csr_value, self.bus.rdata)),
                    count.eq(Mux(is_load, Const(8, 4) - Cat(Const(0, 1), mem_addr[0:2]), 8)),
                    step.eq(_Step.ALIGN),
                ]

            with m.Case(_Step.ALIGN):
                with m.If(count[3]):
                    m.d.sync += [count.eq(0), step.eq(_Step.WRITE_BACK)]
                with m.Else():
                    m.d.comb += stream_shift.eq(1)
                    m.d.sync += count.eq(count + 1)

            with m.Case(_Step.WRITE_BACK):
                m.d.comb += [
                    write_digit.eq(digit),
                    write_data.eq(load_digit),
                    rd_write.eq(1),
                    stream_shift.eq(1),
                    pc_shift.eq(1),
                    pc_increment.eq(1),
                ]
                m.d.sync += count.eq(count + 1)
                with m.If(~extending):
                    m.d.sync += sign.eq(stream[DIGIT - 1])
                with m.If(last_digit):
                    finish()

            with m.Case(_Step.STORE_DATA):
                # SB reads digits 0,1,0,1,..., SH 0,1,2,3,0,...: the data arrives already repeated per lane.
                m.d.comb += [
                    read_rs2.eq(1),
                    read_digit.eq((digit + 1) & Cat(Const(1, 1), f3[0] | f3[1], f3[1])),
                    stream_in.eq(rdat),
                    stream_shift.eq(1),
                    pc_shift.eq(1),
                    pc_increment.eq(1),
                ]
                m.d.sync += count.eq(count + 1)
                with m.If(last_digit):
                    m.d.sync += step.eq(_Step.STORE)

            with m.Case(_Step.STORE):
                finish()

            with m.Case(_Step.SHIFT_AMOUNT):
                m.d.comb += [read_rs2.eq(1), read_digit.eq(1)]
                with m.If(count[0]):
                    m.d.sync += [shamt[4].eq(rdat[0]), count.eq(0), step.eq(_Step.SHIFT)]
                with m.Else():
                    m.d.sync += [shamt[0:4].eq(rdat), count.eq(1)]

            with m.Case(_Step.SHIFT):
                # count 0..8 reads source digits (mirrored for left shifts); results are written at 2..9.
                m.d.comb += [
                    read_digit.eq(shift_read[0:3] ^ digit_mirror),
                    write_digit.eq((digit + DIGITS - 2)[0:3] ^ digit_mirror),
                    write_data.eq(shift_digit),
                    rd_write.eq(count >= 2),
                    pc_shift.eq(~count[3]),  # pc + 4 during counts 0..7
                    pc_increment.eq(1),
                ]
                m.d.sync += [
                    count.eq(count + 1),
                    beyond.eq(shift_read[3]),
                    top_digit.eq(shift_read == DIGITS - 1),
                    prev_digit.eq(current_digit),
                ]
                with m.If(top_digit):
                    m.d.sync += sign.eq(rdat[DIGIT - 1])
                with m.If(count == DIGITS + 1):
                    finish()

            if self._has_message_unit:
                with m.Case(_Step.MESSAGE):
                    m.d.comb += [
                        self.message.valid.eq(1),
                        self.message.funct3.eq(f3),
                        self.message.funct7.eq(ir[25:32]),
                    ]
                    with m.If(self.message.ready):
                        with m.If(self.message.fault):
                            trap(self.message.cause)
                        with m.Else():
                            m.d.sync += [stream.eq(self.message.result), count.eq(8), step.eq(_Step.ALIGN)]

        if self._has_message_unit:
            m.d.comb += [self.message.rs1.eq(message_rs1), self.message.rs2.eq(stream)]

        # -- requests from outside (later assignments win) ---------------------------------------------
        stopped = (step == _Step.HALTED) | (step == _Step.TRAPPED)
        # While SLEEPING nothing of the message instruction has happened yet, except in the cycle the unit answers: its
        # effect (a message taken, a word sent) is done then, so the instruction completes and the stop waits for it.
        abandonable = stopped | ((step == _Step.MESSAGE) & ~self.message.ready) if self._has_message_unit else stopped
        with m.If(self.reset_pc):
            m.d.sync += [pc.eq(0), cause.eq(0), step.eq(_Step.HALTED), pending_halt.eq(0), pending_fault.eq(0)]
        with m.Elif(self.fault_in_valid):
            m.d.sync += cause.eq(self.fault_in_cause)
            with m.If(abandonable):
                m.d.sync += step.eq(_Step.TRAPPED)
            with m.Else():
                m.d.sync += pending_fault.eq(1)
        with m.Elif(self.halt & ~stopped):
            with m.If(abandonable):
                m.d.sync += step.eq(_Step.HALTED)
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
