"""The tile ISA: RV32I plus Tessera's small CSR set and fault causes.

This module is the single source of the numbers that the gateware (`tessera.hw`), the golden model
(`tessera.sim.model`), the assembler/disassembler and the host OS must agree on. docs/isa.md explains them.
"""

from __future__ import annotations

import enum

XLEN = 32
MASK32 = 0xFFFF_FFFF
RESET_PC = 0


class Opcode(enum.IntEnum):
    """Major opcodes (instruction bits 6:0) that a tile executes."""

    LOAD = 0b0000011
    CUSTOM0 = 0b0001011  # Tessera message instructions (see docs/isa.md)
    MISC_MEM = 0b0001111  # FENCE, FENCE.I: no-ops on a tile (memory is private and in order)
    OP_IMM = 0b0010011
    AUIPC = 0b0010111
    STORE = 0b0100011
    OP = 0b0110011
    LUI = 0b0110111
    BRANCH = 0b1100011
    JALR = 0b1100111
    JAL = 0b1101111
    SYSTEM = 0b1110011


class Cause(enum.IntEnum):
    """Why a tile stopped. 0..11 follow the RISC-V mcause exception codes; 16 and up are Tessera's own."""

    INSN_MISALIGNED = 0  # a jump or taken branch to an address that is not a multiple of 4
    FETCH_FAULT = 1  # fetch outside the tile's memory
    ILLEGAL_INSN = 2
    BREAKPOINT = 3  # EBREAK: resumable, pc already points past it
    LOAD_MISALIGNED = 4
    LOAD_FAULT = 5  # load outside the tile's memory
    STORE_MISALIGNED = 6
    STORE_FAULT = 7  # store outside the tile's memory
    ECALL = 11  # ECALL: the service exits; resumable, pc already points past it
    SEND_DENIED = 16  # a send to a destination outside the tile's send permissions
    MESSAGE_FAULT = 17  # a malformed message operation (bad length, receive without a message, ...)
    WATCHDOG = 18  # the tile's watchdog expired
    ASSERTION = 19  # a failed `assert` in a compiled service


#: Causes after which `run` continues with the next instruction; all others are faults.
RESUMABLE_CAUSES = frozenset({Cause.BREAKPOINT, Cause.ECALL})


class Csr(enum.IntEnum):
    """CSRs a tile implements. All are read-only: any CSR write is an illegal instruction."""

    CYCLE = 0xC00
    TIME = 0xC01  # the same chip-wide counter as cycle
    INSTRET = 0xC02
    CYCLEH = 0xC80
    TIMEH = 0xC81
    INSTRETH = 0xC82
    MHARTID = 0xF14  # the tile's number


class TileState(enum.IntEnum):
    """What a tile is doing, as reported at its boundary."""

    HALTED = 0  # stopped by reset or the halt control; `run` starts it
    RUNNING = 1
    SLEEPING = 2  # blocked in a message instruction; issues nothing until it completes
    TRAPPED = 3  # stopped by a cause (fault, ECALL, EBREAK); `cause` says which


class MessageFunct3(enum.IntEnum):
    """funct3 of the custom-0 message instructions (docs/network.md)."""

    PUT = 0
    SEND = 1
    RECV = 2
    GET = 3
    QUERY = 4
    FAULT = 7  # answered by the tile node (hw/tile_node.py), not by the message unit


class MessageOp(enum.IntEnum):
    """Every message instruction as (funct3 << 7) | funct7; any other custom-0 funct3/funct7 is ILLEGAL_INSN.

    The one source of these numbers for the gateware (re-exported by `tessera.hw.noc_layouts`), the models and
    the assembler/disassembler (`firmware/insn_table.py` derives its `msg.*` entries from this enum).
    """

    PUT = (MessageFunct3.PUT << 7) | 0  # stage rs1 as the next payload word (rd <- 0)
    SEND = (MessageFunct3.SEND << 7) | 0  # send staged words to rs1 with tag rs2; waits while one is in flight
    TRYSEND = (MessageFunct3.SEND << 7) | 1  # as SEND, but returns 0 at once instead of waiting
    RECV = (MessageFunct3.RECV << 7) | 0  # wait for a message, return its header (ReceivedHeader)
    TRYRECV = (MessageFunct3.RECV << 7) | 1  # return a header, or 0 at once when the mailbox is empty
    RECVT = (MessageFunct3.RECV << 7) | 2  # wait at most rs1 cycles; 0 on timeout
    GET = (MessageFunct3.GET << 7) | 0  # next payload word of the received message
    COUNT = (MessageFunct3.QUERY << 7) | 0  # complete messages waiting (not counting the one being read)
    STATUS = (MessageFunct3.QUERY << 7) | 1  # MessageStatus word
    FAULT = (MessageFunct3.FAULT << 7) | 0  # always traps with Cause.ASSERTION; rs1 = the reason

    @property
    def funct3(self) -> int:
        return self.value >> 7

    @property
    def funct7(self) -> int:
        return self.value & 0x7F

    @property
    def mnemonic(self) -> str:
        """The assembler's name: `msg.put`, `msg.trysend`, ..."""
        return f"msg.{self.name.lower()}"

    @classmethod
    def decode(cls, funct3: int, funct7: int) -> MessageOp | None:
        """The instruction with these fields, or None if they are not a message instruction."""
        try:
            return cls((funct3 << 7) | funct7)
        except ValueError:
            return None


# ---------------------------------------------------------------------------------------------------------
# Field helpers shared by the assembler, the disassembler and the golden model.


def bits(value: int, hi: int, lo: int) -> int:
    """Bits hi..lo (inclusive) of value."""
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def sign_extend(value: int, width: int) -> int:
    """Interpret the low `width` bits of value as two's complement."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def to_signed(value: int) -> int:
    return sign_extend(value, XLEN)


def imm_i(insn: int) -> int:
    return sign_extend(bits(insn, 31, 20), 12)


def imm_s(insn: int) -> int:
    return sign_extend((bits(insn, 31, 25) << 5) | bits(insn, 11, 7), 12)


def imm_b(insn: int) -> int:
    return sign_extend(
        (bits(insn, 31, 31) << 12) | (bits(insn, 7, 7) << 11) | (bits(insn, 30, 25) << 5) | (bits(insn, 11, 8) << 1),
        13,
    )


def imm_u(insn: int) -> int:
    return insn & 0xFFFF_F000


def imm_j(insn: int) -> int:
    return sign_extend(
        (bits(insn, 31, 31) << 20) | (bits(insn, 19, 12) << 12) | (bits(insn, 20, 20) << 11) | (bits(insn, 30, 21) << 1),
        21,
    )


def _check_field(name: str, value: int, width: int, signed: bool) -> int:
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if not lo <= value <= hi:
        raise ValueError(f"{name} {value} out of range [{lo}, {hi}]")
    return value & ((1 << width) - 1)


def encode_r(opcode: int, rd: int, funct3: int, rs1: int, rs2: int, funct7: int) -> int:
    return (
        (_check_field("funct7", funct7, 7, False) << 25)
        | (_check_field("rs2", rs2, 5, False) << 20)
        | (_check_field("rs1", rs1, 5, False) << 15)
        | (_check_field("funct3", funct3, 3, False) << 12)
        | (_check_field("rd", rd, 5, False) << 7)
        | opcode
    )


def encode_i(opcode: int, rd: int, funct3: int, rs1: int, imm: int) -> int:
    return (
        (_check_field("immediate", imm, 12, True) << 20)
        | (_check_field("rs1", rs1, 5, False) << 15)
        | (_check_field("funct3", funct3, 3, False) << 12)
        | (_check_field("rd", rd, 5, False) << 7)
        | opcode
    )


def encode_s(opcode: int, funct3: int, rs1: int, rs2: int, imm: int) -> int:
    imm = _check_field("offset", imm, 12, True)
    return (
        (bits(imm, 11, 5) << 25)
        | (_check_field("rs2", rs2, 5, False) << 20)
        | (_check_field("rs1", rs1, 5, False) << 15)
        | (_check_field("funct3", funct3, 3, False) << 12)
        | (bits(imm, 4, 0) << 7)
        | opcode
    )


def encode_b(opcode: int, funct3: int, rs1: int, rs2: int, offset: int) -> int:
    if offset % 2:
        raise ValueError(f"branch offset {offset} is odd")
    imm = _check_field("branch offset", offset, 13, True)
    return (
        (bits(imm, 12, 12) << 31)
        | (bits(imm, 10, 5) << 25)
        | (_check_field("rs2", rs2, 5, False) << 20)
        | (_check_field("rs1", rs1, 5, False) << 15)
        | (_check_field("funct3", funct3, 3, False) << 12)
        | (bits(imm, 4, 1) << 8)
        | (bits(imm, 11, 11) << 7)
        | opcode
    )


def encode_u(opcode: int, rd: int, imm20: int) -> int:
    return (_check_field("upper immediate", imm20, 20, False) << 12) | (_check_field("rd", rd, 5, False) << 7) | opcode


def encode_j(opcode: int, rd: int, offset: int) -> int:
    if offset % 2:
        raise ValueError(f"jump offset {offset} is odd")
    imm = _check_field("jump offset", offset, 21, True)
    return (
        (bits(imm, 20, 20) << 31)
        | (bits(imm, 10, 1) << 21)
        | (bits(imm, 11, 11) << 20)
        | (bits(imm, 19, 12) << 12)
        | (_check_field("rd", rd, 5, False) << 7)
        | opcode
    )
