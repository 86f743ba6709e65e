"""Instruction word builders by mnemonic, for tests and the random program generator.

Thin wrappers over the field encoders of `tessera.firmware.isa` (which check every field's range), so that a
test reads `addi(1, 0, 5)` rather than `encode_i(Opcode.OP_IMM, 1, 0, 0, 5)`. Register operands are numbers.
"""

from __future__ import annotations

from tessera.firmware.isa import Opcode, encode_b, encode_i, encode_j, encode_r, encode_s, encode_u

ECALL = 0x0000_0073
EBREAK = 0x0010_0073
FENCE = 0x0FF0_000F  # fence iorw, iorw
FENCE_I = 0x0000_100F

# funct3 of each OP / OP-IMM operation; funct7 = 0x20 marks SUB and SRA(I).
ALU_FUNCT3 = {"add": 0, "sub": 0, "sll": 1, "slt": 2, "sltu": 3, "xor": 4, "srl": 5, "sra": 5, "or": 6, "and": 7}
ALU_ALT = frozenset({"sub", "sra"})
IMM_OPS = ("addi", "slti", "sltiu", "xori", "ori", "andi")
SHIFT_IMM_OPS = ("slli", "srli", "srai")
BRANCH_FUNCT3 = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
LOAD_FUNCT3 = {"lb": 0, "lh": 1, "lw": 2, "lbu": 4, "lhu": 5}
STORE_FUNCT3 = {"sb": 0, "sh": 1, "sw": 2}
CSR_FUNCT3 = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}


def alu(op: str, rd: int, rs1: int, rs2: int) -> int:
    """Register-register ALU operation: add, sub, sll, slt, sltu, xor, srl, sra, or, and."""
    return encode_r(Opcode.OP, rd, ALU_FUNCT3[op], rs1, rs2, 0x20 if op in ALU_ALT else 0)


def alu_imm(op: str, rd: int, rs1: int, imm: int) -> int:
    """Register-immediate operation: addi, slti, sltiu, xori, ori, andi (imm -2048..2047) or slli, srli, srai
    (imm = shift amount 0..31, placed in the rs2 field with funct7 0 or 0x20)."""
    base = op[:-1]
    if op in SHIFT_IMM_OPS:
        return encode_r(Opcode.OP_IMM, rd, ALU_FUNCT3[base], rs1, imm, 0x20 if base in ALU_ALT else 0)
    if op not in IMM_OPS:
        raise ValueError(f"unknown register-immediate operation {op!r}")
    return encode_i(Opcode.OP_IMM, rd, ALU_FUNCT3["sltu" if op == "sltiu" else base], rs1, imm)


def addi(rd: int, rs1: int, imm: int) -> int:
    return alu_imm("addi", rd, rs1, imm)


def lui(rd: int, imm20: int) -> int:
    return encode_u(Opcode.LUI, rd, imm20)


def auipc(rd: int, imm20: int) -> int:
    return encode_u(Opcode.AUIPC, rd, imm20)


def jal(rd: int, offset: int) -> int:
    return encode_j(Opcode.JAL, rd, offset)


def jalr(rd: int, rs1: int, imm: int) -> int:
    return encode_i(Opcode.JALR, rd, 0, rs1, imm)


def branch(op: str, rs1: int, rs2: int, offset: int) -> int:
    """beq, bne, blt, bge, bltu, bgeu with a byte offset relative to the branch."""
    return encode_b(Opcode.BRANCH, BRANCH_FUNCT3[op], rs1, rs2, offset)


def load(op: str, rd: int, rs1: int, imm: int) -> int:
    """lb, lh, lw, lbu, lhu: rd <- mem[rs1 + imm]."""
    return encode_i(Opcode.LOAD, rd, LOAD_FUNCT3[op], rs1, imm)


def store(op: str, rs2: int, rs1: int, imm: int) -> int:
    """sb, sh, sw: mem[rs1 + imm] <- rs2 (assembly operand order)."""
    return encode_s(Opcode.STORE, STORE_FUNCT3[op], rs1, rs2, imm)


def csr(op: str, rd: int, number: int, rs1_or_uimm: int = 0) -> int:
    """csrrw, csrrs, csrrc (rs1) or csrrwi, csrrsi, csrrci (uimm) on CSR `number`."""
    if not 0 <= number < 4096:
        raise ValueError(f"CSR number {number:#x} out of range")
    return encode_i(Opcode.SYSTEM, rd, CSR_FUNCT3[op], rs1_or_uimm, number - 4096 if number >= 2048 else number)


def custom0(rd: int, funct3: int, rs1: int, rs2: int, funct7: int = 0) -> int:
    """A Tessera message instruction (custom-0, R-type fields)."""
    return encode_r(Opcode.CUSTOM0, rd, funct3, rs1, rs2, funct7)


def li(rd: int, value: int) -> list[int]:
    """Load any 32-bit constant in at most two instructions (lui + addi, the addi's sign folded into lui)."""
    value &= 0xFFFF_FFFF
    low = value & 0xFFF
    low = low - 0x1000 if low & 0x800 else low
    high = ((value - low) >> 12) & 0xFFFFF
    if high == 0:
        return [addi(rd, 0, low)]
    if low == 0:
        return [lui(rd, high)]
    return [lui(rd, high), addi(rd, rd, low)]
