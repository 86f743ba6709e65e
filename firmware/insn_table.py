"""The instruction table shared by the assembler and the disassembler.

Each real instruction is one `InsnSpec`: its mnemonic, its encoding format and its fixed fields. The format
decides both the operand syntax and the encoding, so adding a Tessera message instruction (custom-0, R-type
fields) is one line in `INSTRUCTIONS`, e.g. `InsnSpec("msend", Format.R, Opcode.CUSTOM0, funct3=0)`.
An R-type entry may name a shorter operand syntax (`operands`); the message instructions (`msg.*`, numbers
from `isa.MessageOp`) use it for the operands docs/network.md gives them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tessera.firmware.isa import Csr, MessageOp, Opcode, encode_b, encode_i, encode_j, encode_r, encode_s, encode_u, sign_extend


class Format(enum.Enum):
    """Encoding format, which also fixes the operand syntax (comments: as GNU writes the operands)."""

    R = enum.auto()  # rd, rs1, rs2
    I = enum.auto()  # rd, rs1, imm  # noqa: E741 (the RISC-V name of the format)
    SHIFT = enum.auto()  # rd, rs1, shamt: I-type with funct7 in imm[11:5]
    LOAD = enum.auto()  # rd, offset(rs1)
    STORE = enum.auto()  # rs2, offset(rs1)
    BRANCH = enum.auto()  # rs1, rs2, target
    U = enum.auto()  # rd, imm20
    JAL = enum.auto()  # rd, target
    JALR = enum.auto()  # rd, offset(rs1)
    CSR = enum.auto()  # rd, csr, rs1
    CSRI = enum.auto()  # rd, csr, uimm5
    FENCE = enum.auto()  # pred, succ
    FIXED = enum.auto()  # no operands: the whole word is `match`


@dataclass(frozen=True)
class InsnSpec:
    """One real instruction. For FIXED instructions `match` is the whole word; otherwise it is derived.

    `operands` (R-type only): the registers of the short syntax, in order, when the instruction does not use all
    three (`msg.recv rd`); the others are encoded as x0. The full `rd, rs1, rs2` syntax is always accepted too,
    and the disassembler prints it when an unused field is not x0, so every word reads back to itself.
    """

    mnemonic: str
    format: Format
    opcode: int
    funct3: int = 0
    funct7: int = 0
    match: int = 0
    operands: tuple[str, ...] = ("rd", "rs1", "rs2")

    def __post_init__(self) -> None:
        if self.operands != ("rd", "rs1", "rs2") and (
            self.format is not Format.R or not set(self.operands) <= {"rd", "rs1", "rs2"}
        ):
            raise ValueError(f"{self.mnemonic}: short operand syntax {self.operands} needs R-type register fields")

    @property
    def mask(self) -> int:
        """Bits that identify the instruction (the rest are operand fields)."""
        return {
            Format.R: 0xFE00707F,
            Format.SHIFT: 0xFE00707F,
            Format.U: 0x7F,
            Format.JAL: 0x7F,
            Format.FENCE: 0xF00FFFFF,  # fm, rs1 and rd must be zero; pred and succ are operands
            Format.FIXED: 0xFFFFFFFF,
        }.get(self.format, 0x707F)

    @property
    def pattern(self) -> int:
        """The value of the identifying bits."""
        if self.format is Format.FIXED:
            return self.match
        value = self.opcode
        if self.format not in (Format.U, Format.JAL):
            value |= self.funct3 << 12
        if self.format in (Format.R, Format.SHIFT):
            value |= self.funct7 << 25
        return value


#: The operand syntax of each message instruction (docs/network.md, "Message instructions").
MESSAGE_OPERANDS: dict[MessageOp, tuple[str, ...]] = {
    MessageOp.PUT: ("rs1",),
    MessageOp.SEND: ("rs1", "rs2"),
    MessageOp.TRYSEND: ("rd", "rs1", "rs2"),
    MessageOp.RECV: ("rd",),
    MessageOp.TRYRECV: ("rd",),
    MessageOp.RECVT: ("rd", "rs1"),
    MessageOp.GET: ("rd",),
    MessageOp.COUNT: ("rd",),
    MessageOp.STATUS: ("rd",),
    MessageOp.FAULT: ("rs1",),
}


def _specs() -> tuple[InsnSpec, ...]:
    f = Format
    table = [
        InsnSpec("lui", f.U, Opcode.LUI),
        InsnSpec("auipc", f.U, Opcode.AUIPC),
        InsnSpec("jal", f.JAL, Opcode.JAL),
        InsnSpec("jalr", f.JALR, Opcode.JALR, 0),
    ]
    table += [
        InsnSpec(name, f.BRANCH, Opcode.BRANCH, funct3)
        for name, funct3 in (("beq", 0), ("bne", 1), ("blt", 4), ("bge", 5), ("bltu", 6), ("bgeu", 7))
    ]
    table += [
        InsnSpec(name, f.LOAD, Opcode.LOAD, funct3)
        for name, funct3 in (("lb", 0), ("lh", 1), ("lw", 2), ("lbu", 4), ("lhu", 5))
    ]
    table += [InsnSpec(name, f.STORE, Opcode.STORE, funct3) for name, funct3 in (("sb", 0), ("sh", 1), ("sw", 2))]
    table += [
        InsnSpec(name, f.I, Opcode.OP_IMM, funct3)
        for name, funct3 in (("addi", 0), ("slti", 2), ("sltiu", 3), ("xori", 4), ("ori", 6), ("andi", 7))
    ]
    table += [
        InsnSpec("slli", f.SHIFT, Opcode.OP_IMM, 1, 0x00),
        InsnSpec("srli", f.SHIFT, Opcode.OP_IMM, 5, 0x00),
        InsnSpec("srai", f.SHIFT, Opcode.OP_IMM, 5, 0x20),
    ]
    table += [
        InsnSpec(name, f.R, Opcode.OP, funct3, funct7)
        for name, funct3, funct7 in (
            ("add", 0, 0x00),
            ("sub", 0, 0x20),
            ("sll", 1, 0x00),
            ("slt", 2, 0x00),
            ("sltu", 3, 0x00),
            ("xor", 4, 0x00),
            ("srl", 5, 0x00),
            ("sra", 5, 0x20),
            ("or", 6, 0x00),
            ("and", 7, 0x00),
        )
    ]
    table += [
        InsnSpec("fence", f.FENCE, Opcode.MISC_MEM, 0),
        InsnSpec("fence.i", f.FIXED, Opcode.MISC_MEM, match=0x0000100F),
        InsnSpec("ecall", f.FIXED, Opcode.SYSTEM, match=0x00000073),
        InsnSpec("ebreak", f.FIXED, Opcode.SYSTEM, match=0x00100073),
    ]
    table += [
        InsnSpec(name, f.CSR if funct3 < 4 else f.CSRI, Opcode.SYSTEM, funct3)
        for name, funct3 in (("csrrw", 1), ("csrrs", 2), ("csrrc", 3), ("csrrwi", 5), ("csrrsi", 6), ("csrrci", 7))
    ]
    table += [
        InsnSpec(op.mnemonic, f.R, Opcode.CUSTOM0, op.funct3, op.funct7, operands=MESSAGE_OPERANDS[op])
        for op in MessageOp
    ]
    return tuple(table)


INSTRUCTIONS: tuple[InsnSpec, ...] = _specs()
BY_MNEMONIC: dict[str, InsnSpec] = {spec.mnemonic: spec for spec in INSTRUCTIONS}


def decode_spec(word: int) -> InsnSpec | None:
    """The instruction a word encodes, or None if it is not in the table."""
    for spec in INSTRUCTIONS:
        if word & spec.mask == spec.pattern:
            return spec
    return None


# ABI names by register number; x8 is also `fp`.
ABI_NAMES: tuple[str, ...] = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
    "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
    "t3", "t4", "t5", "t6",
)  # fmt: skip

REGISTERS: dict[str, int] = {name: n for n, name in enumerate(ABI_NAMES)} | {f"x{n}": n for n in range(32)} | {"fp": 8}

CSR_NUMBERS: dict[str, int] = {csr.name.lower(): int(csr) for csr in Csr}
CSR_NAMES: dict[int, str] = {number: name for name, number in CSR_NUMBERS.items()}

# FENCE predecessor / successor sets: bit per letter, as GNU writes them.
FENCE_BITS: dict[str, int] = {"i": 8, "o": 4, "r": 2, "w": 1}


def fence_set_name(bits4: int) -> str:
    """The GNU spelling of a FENCE pred/succ set (`iorw`, `rw`, ...); empty for the empty set."""
    return "".join(letter for letter, bit in FENCE_BITS.items() if bits4 & bit)


def encode_spec(spec: InsnSpec, rd: int = 0, rs1: int = 0, rs2: int = 0, imm: int = 0) -> int:
    """Encode `spec` with already range-checked operands. `imm` is the immediate of the format: the signed
    offset or immediate (I, LOAD, STORE, JALR, BRANCH, JAL), the shift amount (SHIFT), the 20-bit upper
    immediate (U), the CSR number (CSR, CSRI; the 5-bit immediate of CSRI goes in rs1), or
    `pred << 4 | succ` (FENCE)."""
    fmt = spec.format
    if fmt is Format.R:
        return encode_r(spec.opcode, rd, spec.funct3, rs1, rs2, spec.funct7)
    if fmt in (Format.I, Format.LOAD, Format.JALR):
        return encode_i(spec.opcode, rd, spec.funct3, rs1, imm)
    if fmt is Format.SHIFT:
        if not 0 <= imm < 32:
            raise ValueError(f"shift amount {imm} out of range [0, 31]")
        return encode_i(spec.opcode, rd, spec.funct3, rs1, spec.funct7 << 5 | imm)
    if fmt is Format.STORE:
        return encode_s(spec.opcode, spec.funct3, rs1, rs2, imm)
    if fmt is Format.BRANCH:
        return encode_b(spec.opcode, spec.funct3, rs1, rs2, imm)
    if fmt is Format.U:
        return encode_u(spec.opcode, rd, imm)
    if fmt is Format.JAL:
        return encode_j(spec.opcode, rd, imm)
    if fmt in (Format.CSR, Format.CSRI):
        if not 0 <= imm < 4096:
            raise ValueError(f"CSR number {imm} out of range [0, 4095]")
        return encode_i(spec.opcode, rd, spec.funct3, rs1, sign_extend(imm, 12))
    if fmt is Format.FENCE:
        if not 0 <= imm < 256:
            raise ValueError(f"fence sets {imm:#x} out of range")
        return encode_i(spec.opcode, 0, spec.funct3, 0, imm)
    return spec.match
