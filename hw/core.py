"""The tile CPU: a small multi-cycle RV32I core with Tessera's trap model, CSR subset and message port.

Microarchitecture (docs/core.md has the reasoning and the measured figures):
- The register file is a 32 x 32 `lib.memory.Memory` with one synchronous read port (block RAM). The two
  source registers are read in successive cycles; the first one read is latched in the operand register `opr`,
  the second stays in the read port's output register (its enable is low while it is needed).
- One 32-bit adder serves everything: ALU sums and compares, load/store addresses, pc + 4, branch and jump
  targets, return addresses. The next pc is computed in the fetch cycle itself, so the adder is free then.
- Shifts run one bit per cycle in `opr`.
- The core is the only path from the tile's program to memory, and every address it drives has been checked
  against the memory size, so nothing outside the tile is reachable.

The contract (ports, faults, states) is in the project brief and docs/isa.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import Cause, Csr, Opcode, TileState

__all__ = [
    "MemoryBusSignature",
    "MessageSignature",
    "OpcodeDecode",
    "TileCore",
    "check_mem_bytes",
    "decode_opcode",
    "instruction_is_legal",
]


def check_mem_bytes(mem_bytes: int) -> int:
    """Validate a tile memory size and return its word-address width."""
    if mem_bytes < 1024 or mem_bytes & (mem_bytes - 1):
        raise ValueError(f"mem_bytes must be a power of two >= 1024, not {mem_bytes}")
    return mem_bytes.bit_length() - 1 - 2


def check_tile_id(tile_id: int) -> None:
    """Refuse a tile number that does not fit mhartid."""
    if not 0 <= tile_id < 1 << 32:
        raise ValueError(f"tile_id {tile_id} does not fit 32 bits")


@dataclass(frozen=True)
class OpcodeDecode:
    """One flag per major opcode a tile executes (see `decode_opcode`); `custom0` is 0 without a message unit."""

    load: Value
    store: Value
    branch: Value
    op: Value
    op_imm: Value
    lui: Value
    auipc: Value
    jal: Value
    jalr: Value
    system: Value
    misc_mem: Value
    custom0: Value

    @property
    def alu(self) -> Value:
        """OP or OP-IMM: the instructions whose funct3 names an ALU operation."""
        return self.op | self.op_imm


def decode_opcode(word: Value, has_message_unit: bool) -> OpcodeDecode:
    """The major-opcode flags of instruction `word` (each compares its bits 6..2; bits 1..0 are not looked at).

    The flags are exclusive for every word. Decoding only the bits that tell the legal opcodes apart (2-3 bits
    a flag) measured 20 LUTs *more* on the bit-serial core: it loses that exclusivity, which the cores'
    priority multiplexers let Yosys exploit.
    """

    def op_is(op: Opcode) -> Value:
        return word[2:7] == (op >> 2)

    return OpcodeDecode(
        load=op_is(Opcode.LOAD),
        store=op_is(Opcode.STORE),
        branch=op_is(Opcode.BRANCH),
        op=op_is(Opcode.OP),
        op_imm=op_is(Opcode.OP_IMM),
        lui=op_is(Opcode.LUI),
        auipc=op_is(Opcode.AUIPC),
        jal=op_is(Opcode.JAL),
        jalr=op_is(Opcode.JALR),
        system=op_is(Opcode.SYSTEM),
        misc_mem=op_is(Opcode.MISC_MEM),
        custom0=op_is(Opcode.CUSTOM0) if has_message_unit else Const(0),
    )


def instruction_is_legal(m: Module, word: Value, has_message_unit: bool) -> Signal:
    """Whether `word` is an instruction the tile executes (the legality rules of docs/isa.md)."""
    f3 = word[12:15]
    f7 = word[25:32]
    csr_number = word[20:32]
    # cycle 0xC00, time 0xC01, cycleh 0xC80, timeh 0xC81 differ only in bits 7 and 0; mhartid is 0xF14.
    csr_known = ((csr_number[8:12] == 0xC) & (csr_number[1:7] == 0)) | (csr_number == Csr.MHARTID)
    csr_read = f3[1] & (word[15:20] == 0) & csr_known  # CSRRS/CSRRC with rs1 = x0, CSRRSI/CSRRCI with uimm = 0
    ecall_or_ebreak = (word[21:32] == 0) & (word[7:20] == 0)
    f7_zero = f7 == 0
    f7_alt = f7 == 0b0100000
    shift = f3[0:2] == 0b01
    legal = Signal()
    with m.Switch(word[2:7]):
        with m.Case(Opcode.LOAD >> 2):
            m.d.comb += legal.eq((f3 != 0b011) & (f3[1:3] != 0b11))
        with m.Case(Opcode.STORE >> 2):
            m.d.comb += legal.eq(~f3[2] & (f3 != 0b011))
        with m.Case(Opcode.OP_IMM >> 2):
            m.d.comb += legal.eq(~shift | f7_zero | (f3[2] & f7_alt))
        with m.Case(Opcode.OP >> 2):
            m.d.comb += legal.eq(f7_zero | (f7_alt & ((f3 == 0b000) | (f3 == 0b101))))
        with m.Case(Opcode.BRANCH >> 2):
            m.d.comb += legal.eq(f3[1:3] != 0b01)
        with m.Case(Opcode.JALR >> 2):
            m.d.comb += legal.eq(f3 == 0)
        with m.Case(Opcode.JAL >> 2, Opcode.LUI >> 2, Opcode.AUIPC >> 2):
            m.d.comb += legal.eq(1)
        with m.Case(Opcode.MISC_MEM >> 2):
            m.d.comb += legal.eq(f3[1:3] == 0)
        with m.Case(Opcode.SYSTEM >> 2):
            m.d.comb += legal.eq(ecall_or_ebreak | csr_read)
        if has_message_unit:
            with m.Case(Opcode.CUSTOM0 >> 2):
                m.d.comb += legal.eq(1)
    return legal & (word[0:2] == 0b11)


def control_members(has_message_unit: bool) -> dict[str, wiring.Member]:
    """The control, status and cycle-counter ports that a core and a tile both have (plus the message port)."""
    members = {
        "run": In(1),
        "halt": In(1),
        "reset_pc": In(1),
        "fault_in_valid": In(1),
        "fault_in_cause": In(5),
        "state": Out(2),
        "cause": Out(5),
        "pc": Out(32),
        "retired": Out(1),
        "cycle": In(64),
    }
    if has_message_unit:
        members["message"] = Out(MessageSignature())
    return members


class MemoryBusSignature(wiring.Signature):
    """A word-addressed memory port seen from its initiator: read data arrives the cycle after `re`.

    With `waits=True` the memory may be shared (`tessera.hw.spram_bank.SpramBank`) and two more members appear:
    `ready` (in: the memory takes this cycle's `re`/`we`; otherwise the initiator holds the request unchanged and
    asks again next cycle; read data arrives the cycle after the cycle `re` was taken) and `cannot_wait` (out: this
    request must be taken in the cycle it is made: the host's debug port, which has no way to wait).
    """

    def __init__(self, addr_width: int, *, waits: bool = False):
        super().__init__(
            {
                "addr": Out(addr_width),
                "re": Out(1),
                "we": Out(1),
                "wdata": Out(32),
                "wmask": Out(4),
                "rdata": In(32),
                **({"ready": In(1), "cannot_wait": Out(1)} if waits else {}),
            }
        )


class MessageSignature(wiring.Signature):
    """The core's port to its message unit, seen from the core.

    The core holds `valid` with stable operands until `ready`; then `result` goes to rd, or `fault` makes the
    core trap with `cause` at the message instruction.
    """

    def __init__(self):
        super().__init__(
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


class _Step(enum.IntEnum):
    """Internal sequencer steps. HALTED and TRAPPED are the stopped states; all others are RUNNING except MESSAGE."""

    HALTED = 0
    TRAPPED = 1
    FETCH = 2  # compute the next pc with the adder and read the instruction there
    DECODE = 3  # latch the instruction, check that it is legal, read the first source register
    EXEC1 = 4  # first operand available: single-operand instructions finish here
    EXEC2 = 5  # both operands available (rs2 in `opr`, rs1 on the register file port)
    SHIFT = 6  # one bit per cycle in `opr`
    LOAD = 7  # load data arrives: align, extend, write rd
    MESSAGE = 8  # waiting for the message unit (SLEEPING)


class TileCore(wiring.Component):
    """RV32I tile core.

    Parameters: `mem_bytes` (tile memory size, a power of two >= 1024), `tile_id` (read by mhartid),
    `has_message_unit` (custom-0 goes to the `message` port; without it custom-0 is illegal).

    instret/instreth are not implemented (they would cost a 64-bit counter, ~70 logic cells): reading them is an
    illegal instruction. `retired` pulses once per retired instruction, ECALL and EBREAK included, for logic
    outside the core that wants to count.
    """

    def __init__(self, *, mem_bytes: int, tile_id: int = 0, has_message_unit: bool = False):
        addr_width = check_mem_bytes(mem_bytes)
        check_tile_id(tile_id)
        self._mem_bytes = mem_bytes
        self._addr_width = addr_width
        self._tile_id = tile_id
        self._has_message_unit = has_message_unit
        super().__init__({"bus": Out(MemoryBusSignature(addr_width)), **control_members(has_message_unit)})
        self._registers = memory.Memory(shape=32, depth=32, init=[])

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
        """Simulation only: the value of register x`index`, read from the register file's storage."""
        if not 0 <= index < 32:
            raise ValueError(f"register index {index} out of range 0..31")
        return 0 if index == 0 else ctx.get(self._registers.data[index])

    def elaborate(self, platform):
        m = Module()
        byte_bits = self._addr_width + 2  # address bits inside the tile memory

        # -- architectural and sequencing state ---------------------------------------------------------
        step = Signal(_Step, init=_Step.HALTED)
        pc = Signal(30)  # pc[31:2]; every pc the core reaches is a multiple of 4 (misaligned targets trap)
        ir = Signal(32)
        opr = Signal(32)  # first-read operand (rs2, or rs1 for shifts), then the shift register
        count = Signal(5)  # remaining shift steps
        fresh = Signal(init=1)  # the next fetch is at pc itself (after a stop), not at the next instruction
        redirect = Signal()  # the instruction in ir jumps: the next fetch goes to its target
        offset = Signal(2)  # low address bits of a load, for aligning its data
        cause = Signal(5)

        m.submodules.regs = regs = self._registers
        rf_rd = regs.read_port(domain="sync")
        rf_wr = regs.write_port()
        m.d.comb += rf_rd.en.eq(0)
        rf = rf_rd.data

        # -- instruction fields -------------------------------------------------------------------------
        f3 = ir[12:15]
        f7 = ir[25:32]
        rs1 = ir[15:20]
        rd = ir[7:12]

        opcode = decode_opcode(ir, self._has_message_unit)
        is_load, is_store, is_branch = opcode.load, opcode.store, opcode.branch
        is_op, is_op_imm, is_lui, is_auipc = opcode.op, opcode.op_imm, opcode.lui, opcode.auipc
        is_jal, is_jalr, is_system, is_custom0 = opcode.jal, opcode.jalr, opcode.system, opcode.custom0
        is_shift = f3[0:2] == 0b01  # SLL(I) / SRL(I) / SRA(I) inside OP and OP-IMM

        # -- immediates ----------------------------------------------------------------------------------
        sign = ir[31]
        imm_i = Cat(ir[20:31], sign.replicate(21))
        imm_s = Cat(ir[7:12], ir[25:31], sign.replicate(21))
        imm_b = Cat(Const(0, 1), ir[8:12], ir[25:31], ir[7], sign.replicate(20))
        imm_u = Cat(Const(0, 12), ir[12:32])
        imm_j = Cat(Const(0, 1), ir[21:31], ir[20], ir[12:20], sign.replicate(12))
        imm_fmt = Signal(32)
        with m.If(is_lui | is_auipc):
            m.d.comb += imm_fmt.eq(imm_u)
        with m.Elif(is_jal):
            m.d.comb += imm_fmt.eq(imm_j)
        with m.Elif(is_branch):
            m.d.comb += imm_fmt.eq(imm_b)
        with m.Elif(is_store):
            m.d.comb += imm_fmt.eq(imm_s)
        with m.Else():
            m.d.comb += imm_fmt.eq(imm_i)

        # -- the adder and ALU ---------------------------------------------------------------------------
        a_pc = Signal()  # operand A = pc (else the register file port)
        a_zero = Signal()  # operand A = 0
        b_opr = Signal()  # operand B = opr (else the immediate)
        b_imm = Signal()  # the immediate is the instruction's own (else `b_four`: 4, or 0)
        b_four = Signal()
        sub = Signal()  # subtract (compare): B inverted, carry in

        op_a = Signal(32)
        op_b = Signal(32)  # inverted when subtracting
        m.d.comb += [
            op_a.eq(Mux(a_pc, Cat(Const(0, 2), pc), Mux(a_zero, 0, rf))),
            op_b.eq(Mux(b_opr, opr, Mux(b_imm, imm_fmt, Mux(b_four, 4, 0))) ^ sub.replicate(32)),
        ]
        # The carry in rides in an extra low bit so the whole sum is one carry chain.
        total = Signal(34)
        m.d.comb += total.eq(Cat(Const(1, 1), op_a) + Cat(sub, op_b))
        sum_ = total[1:33]
        carry = total[33]
        less_unsigned = ~carry
        less_signed = Mux(op_a[31] ^ op_b[31] ^ sub, op_a[31], sum_[31])
        equal = sum_ == 0
        # XOR / OR / AND (funct3 100 / 110 / 111) are only ever computed with sub = 0, so op_b is B itself.
        logic = Mux(f3[1], Mux(f3[0], op_a & op_b, op_a | op_b), op_a ^ op_b)
        alu_f3 = Signal()  # the result is the OP / OP-IMM operation funct3 names (else the sum)
        use_logic = alu_f3 & f3[2]
        use_less = alu_f3 & (f3[1:3] == 0b01)
        alu_out = Mux(use_logic, logic, sum_) & ~use_less.replicate(32) | (use_less & Mux(f3[0], less_unsigned, less_signed))
        branch_taken = Mux(f3[2], Mux(f3[1], less_unsigned, less_signed), equal) ^ f3[0]

        in_memory = sum_[byte_bits:] == 0

        # -- register write-back -------------------------------------------------------------------------
        wb_load = Signal()
        wb_csr = Signal()
        wb_message = Signal()
        rd_write = Signal()  # the current step writes rd (suppressed for x0 and by a stop request)

        # CSR values and message results share the load path as whole words (a legal CSR read has funct3[1] = 1).
        csr_data = Mux(ir[29], self._tile_id, Mux(ir[27], self.cycle[32:64], self.cycle[0:32]))
        ext_word = Mux(wb_csr, csr_data, self.bus.rdata)
        whole_word = f3[1]
        if self._has_message_unit:
            ext_word = Mux(wb_message, self.message.result, ext_word)
            whole_word = f3[1] | wb_message
        load_byte = ext_word.word_select(offset, 8)
        load_half = ext_word.word_select(offset[1], 16)
        load_ext = ~f3[2] & Mux(f3[0], load_half[15], load_byte[7])
        load_data = Mux(
            whole_word, ext_word, Mux(f3[0], Cat(load_half, load_ext.replicate(16)), Cat(load_byte, load_ext.replicate(24)))
        )
        wb_data = Mux(wb_load | wb_csr | wb_message, load_data, alu_out)

        # -- stop requests from outside ------------------------------------------------------------------
        active = (step != _Step.HALTED) & (step != _Step.TRAPPED)
        # A stop abandons the instruction under way, except in the cycle the message unit answers one: its effect (a
        # message taken, a word sent) is done then, so the instruction completes and the stop acts a cycle later.
        answered = Signal()
        if self._has_message_unit:
            m.d.comb += answered.eq((step == _Step.MESSAGE) & self.message.ready)
        pending_halt = Signal()
        pending_fault = Signal()  # `cause` holds the fault's cause already
        halt_request = active & (self.halt | pending_halt)
        fault_request = self.fault_in_valid | pending_fault
        stop = ((halt_request | fault_request) & ~answered) | self.reset_pc
        in_fetch = step == _Step.FETCH

        m.d.comb += [
            rf_wr.addr.eq(rd),
            rf_wr.data.eq(wb_data),
            rf_wr.en.eq(rd_write & (rd != 0) & ~stop),
        ]

        store_off = sum_[0:2]
        m.d.comb += [
            self.bus.addr.eq(sum_[2:byte_bits]),
            self.bus.wdata.eq(
                Mux(f3[1], opr, Mux(f3[0], opr[0:16].replicate(2), opr[0:8].replicate(4)))
            ),
            self.bus.wmask.eq(
                Mux(f3[1], 0b1111, Mux(f3[0], Mux(store_off[1], 0b1100, 0b0011), Const(1, 4) << store_off))
            ),
        ]
        bus_we = Signal()
        m.d.comb += self.bus.we.eq(bus_we & ~stop)

        retire = Signal()
        m.d.comb += self.retired.eq(retire & ~stop)

        def trap(code):
            """Stop in TRAPPED with `code`; the caller has made sure nothing of the instruction happened."""
            m.d.sync += [cause.eq(code), step.eq(_Step.TRAPPED), fresh.eq(1)]

        def finish():
            """The instruction is complete: retire it and fetch the next one."""
            m.d.comb += retire.eq(1)
            m.d.sync += step.eq(_Step.FETCH)

        # -- the sequencer -------------------------------------------------------------------------------
        with m.Switch(step):
            with m.Case(_Step.HALTED, _Step.TRAPPED):
                with m.If(self.run):
                    m.d.sync += step.eq(_Step.FETCH)

            with m.Case(_Step.FETCH):
                # next pc = pc (after a stop) / pc + 4 / jump or branch target (rs1 + imm for JALR)
                jump = redirect & ~fresh
                m.d.comb += [
                    a_pc.eq(~(jump & is_jalr)),
                    b_imm.eq(jump),
                    b_four.eq(~fresh),
                ]
                m.d.sync += [pc.eq(sum_[2:32]), fresh.eq(0)]
                with m.If(in_memory):
                    m.d.comb += self.bus.re.eq(1)
                    m.d.sync += step.eq(_Step.DECODE)
                with m.Else():
                    trap(Cause.FETCH_FAULT)

            with m.Case(_Step.DECODE):
                word = self.bus.rdata
                arriving = decode_opcode(word, self._has_message_unit)
                rs2_first = arriving.op | arriving.branch | arriving.store | arriving.custom0
                m.d.comb += [rf_rd.en.eq(1), rf_rd.addr.eq(Mux(rs2_first, word[20:25], word[15:20]))]
                m.d.sync += [ir.eq(word), redirect.eq(0), step.eq(_Step.EXEC1)]
                with m.If(~instruction_is_legal(m, word, self._has_message_unit)):
                    trap(Cause.ILLEGAL_INSN)

            with m.Case(_Step.EXEC1):
                with m.If(is_op | is_branch | is_store | is_custom0):
                    m.d.comb += [rf_rd.en.eq(1), rf_rd.addr.eq(rs1)]
                    m.d.sync += [opr.eq(rf), step.eq(_Step.EXEC2)]
                with m.Elif(is_op_imm & is_shift):
                    m.d.sync += [opr.eq(rf), count.eq(ir[20:25]), step.eq(_Step.SHIFT)]
                with m.Elif(is_op_imm):
                    m.d.comb += [b_imm.eq(1), sub.eq(f3[1:3] == 0b01), alu_f3.eq(1), rd_write.eq(1)]
                    finish()
                with m.Elif(is_lui | is_auipc):
                    m.d.comb += [a_pc.eq(is_auipc), a_zero.eq(1), b_imm.eq(1), rd_write.eq(1)]
                    finish()
                with m.Elif(is_jal | is_jalr):
                    # Target bit 1: imm[1] for JAL (pc is aligned); bit 1 of rs1 + imm for JALR.
                    target_bit1 = Mux(is_jal, ir[21], rf[1] ^ ir[21] ^ (rf[0] & ir[20]))
                    with m.If(target_bit1):
                        trap(Cause.INSN_MISALIGNED)
                    with m.Else():
                        m.d.comb += [a_pc.eq(1), b_four.eq(1), rd_write.eq(1)]
                        m.d.sync += redirect.eq(1)
                        finish()
                with m.Elif(is_load):
                    m.d.comb += b_imm.eq(1)
                    with m.If(Mux(f3[1], sum_[0:2] != 0, f3[0] & sum_[0])):
                        trap(Cause.LOAD_MISALIGNED)
                    with m.Elif(~in_memory):
                        trap(Cause.LOAD_FAULT)
                    with m.Else():
                        m.d.comb += self.bus.re.eq(1)
                        m.d.sync += [offset.eq(sum_[0:2]), step.eq(_Step.LOAD)]
                with m.Elif(is_system & ~f3.any()):
                    # ECALL / EBREAK retire and stop with pc past them.
                    m.d.comb += [a_pc.eq(1), b_four.eq(1), retire.eq(1)]
                    m.d.sync += pc.eq(sum_[2:32])
                    trap(Mux(ir[20], Cause.BREAKPOINT, Cause.ECALL))
                with m.Elif(is_system):
                    m.d.comb += [wb_csr.eq(1), rd_write.eq(1)]
                    finish()
                with m.Else():  # FENCE, FENCE.I
                    finish()

            with m.Case(_Step.EXEC2):
                with m.If(is_branch):
                    m.d.comb += [b_opr.eq(1), sub.eq(1)]
                    with m.If(branch_taken & ir[8]):  # ir[8] = target bit 1
                        trap(Cause.INSN_MISALIGNED)
                    with m.Else():
                        m.d.sync += redirect.eq(branch_taken)
                        finish()
                with m.Elif(is_store):
                    m.d.comb += b_imm.eq(1)
                    with m.If(Mux(f3[1], sum_[0:2] != 0, f3[0] & sum_[0])):
                        trap(Cause.STORE_MISALIGNED)
                    with m.Elif(~in_memory):
                        trap(Cause.STORE_FAULT)
                    with m.Else():
                        m.d.comb += bus_we.eq(1)
                        finish()
                with m.Elif(is_op & is_shift):
                    m.d.sync += [opr.eq(rf), count.eq(opr[0:5]), step.eq(_Step.SHIFT)]
                with m.Elif(is_op):
                    m.d.comb += [
                        b_opr.eq(1),
                        sub.eq((f3[1:3] == 0b01) | ((f3 == 0) & ir[30])),
                        alu_f3.eq(1),
                        rd_write.eq(1),
                    ]
                    finish()
                with m.Else():  # custom-0
                    m.d.sync += step.eq(_Step.MESSAGE)

            with m.Case(_Step.SHIFT):
                with m.If(count == 0):
                    m.d.comb += [a_zero.eq(1), b_opr.eq(1), rd_write.eq(1)]
                    finish()
                with m.Else():
                    m.d.sync += count.eq(count - 1)
                    with m.If(f3[2]):
                        m.d.sync += opr.eq(Cat(opr[1:32], ir[30] & opr[31]))
                    with m.Else():
                        m.d.sync += opr.eq(Cat(Const(0, 1), opr[0:31]))

            with m.Case(_Step.LOAD):
                m.d.comb += [wb_load.eq(1), rd_write.eq(1)]
                finish()

            if self._has_message_unit:
                with m.Case(_Step.MESSAGE):
                    m.d.comb += [
                        self.message.valid.eq(1),
                        self.message.funct3.eq(f3),
                        self.message.funct7.eq(f7),
                        self.message.rs1.eq(rf),
                        self.message.rs2.eq(opr),
                    ]
                    with m.If(self.message.ready):
                        with m.If(self.message.fault):
                            trap(self.message.cause)
                        with m.Else():
                            m.d.comb += [wb_message.eq(1), rd_write.eq(1)]
                            finish()

        # -- outside requests override the sequencer (a later assignment wins) ---------------------------
        m.d.sync += [pending_halt.eq(0), pending_fault.eq(0)]
        with m.If(self.reset_pc):
            m.d.sync += [pc.eq(0), cause.eq(0), fresh.eq(1), step.eq(_Step.HALTED)]
        with m.Elif(fault_request | halt_request):  # a fault wins over a halt
            with m.If(self.fault_in_valid):
                m.d.sync += cause.eq(self.fault_in_cause)
            with m.If(answered):
                m.d.sync += [pending_fault.eq(fault_request), pending_halt.eq(~fault_request)]
            with m.Else():
                m.d.sync += [fresh.eq(1), step.eq(Mux(fault_request, _Step.TRAPPED, _Step.HALTED))]
                with m.If(~in_fetch):
                    m.d.sync += pc.eq(pc)

        # -- status --------------------------------------------------------------------------------------
        with m.Switch(step):
            with m.Case(_Step.HALTED):
                m.d.comb += self.state.eq(TileState.HALTED)
            with m.Case(_Step.TRAPPED):
                m.d.comb += self.state.eq(TileState.TRAPPED)
            with m.Case(_Step.MESSAGE):
                m.d.comb += self.state.eq(TileState.SLEEPING)
            with m.Default():
                m.d.comb += self.state.eq(TileState.RUNNING)
        m.d.comb += [self.cause.eq(cause), self.pc.eq(Cat(Const(0, 2), pc))]
        return m
