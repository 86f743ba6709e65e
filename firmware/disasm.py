"""The Tessera RV32I disassembler: one word to one line of GNU syntax, as `objdump -d` prints it.

`disassemble(word, pc)` gives `mnemonic<TAB>operands` with objdump's choices (decimal immediates, hex
shift amounts and upper immediates, CSR names, ABI register names). With `aliases=True` (objdump's default)
the common pseudo-instructions are shown (`li`, `mv`, `ret`, `j`, `nop`, `beqz`, `csrr`, ...); with
`aliases=False` it matches `objdump -M no-aliases`. Branch and jump targets are absolute addresses written
`0x...` (objdump writes the same number without `0x`), so that every line assembles back to the same word at
the same pc. Tessera's message instructions come out in their short syntax (`msg.recv\ta0`), or with all three
registers when a field they do not use is not x0. Other words that are not RV32I instructions come out as
`.word 0x...`.
"""

from __future__ import annotations

from tessera.firmware.insn_table import ABI_NAMES, CSR_NAMES, Format, InsnSpec, decode_spec, fence_set_name
from tessera.firmware.isa import MASK32, bits, imm_b, imm_i, imm_j, imm_s

__all__ = ["disassemble", "disassemble_program"]

_CSR_READ_ALIASES = {"cycle": "rdcycle", "cycleh": "rdcycleh", "time": "rdtime", "timeh": "rdtimeh",
                     "instret": "rdinstret", "instreth": "rdinstreth"}  # fmt: skip
_CSR_WRITE_ALIASES = {"csrrw": "csrw", "csrrs": "csrs", "csrrc": "csrc"}
_UNIMP = 0xC0001073  # csrrw zero, cycle, zero: GNU's `unimp`
_ZERO_BRANCH_ALIASES = {"beq": ("beqz", None), "bne": ("bnez", None), "bge": ("bgez", "blez"), "blt": ("bltz", "bgtz")}


def _reg(n: int) -> str:
    return ABI_NAMES[n]


def _csr(number: int) -> str:
    return CSR_NAMES.get(number, f"{number:#x}")


def _line(mnemonic: str, *operands: str) -> str:
    return f"{mnemonic}\t{','.join(operands)}" if operands else mnemonic


def _target(pc: int, offset: int) -> str:
    return f"{(pc + offset) & MASK32:#x}"


def _plain(spec: InsnSpec, word: int, pc: int) -> str:
    """The no-aliases form."""
    rd, rs1, rs2 = bits(word, 11, 7), bits(word, 19, 15), bits(word, 24, 20)
    m, fmt = spec.mnemonic, spec.format
    if fmt is Format.R:
        fields = {"rd": rd, "rs1": rs1, "rs2": rs2}
        if all(value == 0 for name, value in fields.items() if name not in spec.operands):
            return _line(m, *(_reg(fields[name]) for name in spec.operands))
        return _line(m, _reg(rd), _reg(rs1), _reg(rs2))
    if fmt is Format.I:
        return _line(m, _reg(rd), _reg(rs1), str(imm_i(word)))
    if fmt is Format.SHIFT:
        return _line(m, _reg(rd), _reg(rs1), f"{rs2:#x}")
    if fmt in (Format.LOAD, Format.JALR):
        return _line(m, _reg(rd), f"{imm_i(word)}({_reg(rs1)})")
    if fmt is Format.STORE:
        return _line(m, _reg(rs2), f"{imm_s(word)}({_reg(rs1)})")
    if fmt is Format.BRANCH:
        return _line(m, _reg(rs1), _reg(rs2), _target(pc, imm_b(word)))
    if fmt is Format.U:
        return _line(m, _reg(rd), f"{bits(word, 31, 12):#x}")
    if fmt is Format.JAL:
        return _line(m, _reg(rd), _target(pc, imm_j(word)))
    if fmt is Format.CSR:
        return _line(m, _reg(rd), _csr(bits(word, 31, 20)), _reg(rs1))
    if fmt is Format.CSRI:
        return _line(m, _reg(rd), _csr(bits(word, 31, 20)), str(rs1))
    if fmt is Format.FENCE:
        return _line(m, fence_set_name(bits(word, 27, 24)), fence_set_name(bits(word, 23, 20)))
    return m


# objdump writes these register-immediate operations with the register mnemonic (GNU accepts both).
_IMMEDIATE_ALIASES = {"addi": "add", "xori": "xor", "ori": "or", "andi": "and", "slli": "sll", "srli": "srl",
                      "srai": "sra"}  # fmt: skip


def _alias(spec: InsnSpec, word: int, pc: int) -> str | None:
    """objdump's alias for a word, if it has one."""
    rd, rs1, rs2 = bits(word, 11, 7), bits(word, 19, 15), bits(word, 24, 20)
    m = spec.mnemonic
    imm = imm_i(word)
    special: tuple[str, ...] | None = None
    if m == "addi":
        if rd == 0 and rs1 == 0 and imm == 0:
            return "nop"
        if rs1 == 0:
            return _line("li", _reg(rd), str(imm))
        if imm == 0:
            return _line("mv", _reg(rd), _reg(rs1))
    elif m == "xori" and imm == -1:
        special = ("not", _reg(rd), _reg(rs1))
    elif m == "andi" and imm == 255:
        special = ("zext.b", _reg(rd), _reg(rs1))
    elif m == "sltiu" and imm == 1:
        special = ("seqz", _reg(rd), _reg(rs1))
    elif m == "sub" and rs1 == 0:
        special = ("neg", _reg(rd), _reg(rs2))
    elif m == "sltu" and rs1 == 0:
        special = ("snez", _reg(rd), _reg(rs2))
    elif m == "slt" and rs2 == 0:
        special = ("sltz", _reg(rd), _reg(rs1))
    elif m == "slt" and rs1 == 0:
        special = ("sgtz", _reg(rd), _reg(rs2))
    elif m == "jal" and rd in (0, 1):
        special = ("j" if rd == 0 else "jal", _target(pc, imm_j(word)))
    elif m == "jalr" and rd in (0, 1):
        name = "jr" if rd == 0 else "jalr"
        if rd == 0 and rs1 == 1 and imm == 0:
            return "ret"
        special = (name, _reg(rs1)) if imm == 0 else (name, f"{imm}({_reg(rs1)})")
    elif m == "jalr" and imm == 0:
        special = ("jalr", _reg(rd), _reg(rs1))
    elif m in _ZERO_BRANCH_ALIASES:
        special = _zero_branch(m, rs1, rs2, _target(pc, imm_b(word)))
    elif spec.format in (Format.CSR, Format.CSRI):
        return _csr_alias(m, word, rd, rs1)
    elif m == "fence" and bits(word, 27, 20) == 0xFF:
        return "fence"
    if special is not None:
        return _line(*special)
    if m in _IMMEDIATE_ALIASES:
        return _plain(spec, word, pc).replace(m, _IMMEDIATE_ALIASES[m], 1)
    return None


def _zero_branch(m: str, rs1: int, rs2: int, target: str) -> tuple[str, ...] | None:
    when_rs2_zero, when_rs1_zero = _ZERO_BRANCH_ALIASES[m]
    if rs2 == 0:
        return (when_rs2_zero, _reg(rs1), target)
    if rs1 == 0 and when_rs1_zero:
        return (when_rs1_zero, _reg(rs2), target)
    return None


def _csr_alias(m: str, word: int, rd: int, rs1: int) -> str | None:
    csr = _csr(bits(word, 31, 20))
    if m == "csrrs" and rs1 == 0:
        return _line(_CSR_READ_ALIASES[csr], _reg(rd)) if csr in _CSR_READ_ALIASES else _line("csrr", _reg(rd), csr)
    immediate = m.endswith("i")
    operand = str(rs1) if immediate else _reg(rs1)
    if rd == 0:
        # objdump names the immediate forms like the register ones: csrw csr, 5.
        return _line(_CSR_WRITE_ALIASES[m.removesuffix("i")], csr, operand)
    return _line(m.removesuffix("i"), _reg(rd), csr, operand) if immediate else None


def disassemble(word: int, pc: int = 0, *, aliases: bool = True) -> str:
    """One instruction word at address `pc` as GNU syntax; `.word 0x...` if it is not an RV32I instruction."""
    word &= MASK32
    spec = decode_spec(word)
    if spec is None or (spec.format is Format.FENCE and (bits(word, 27, 24) == 0 or bits(word, 23, 20) == 0)):
        return f".word\t{word:#010x}"
    if word == _UNIMP:  # objdump prints `unimp` even with -M no-aliases
        return "unimp"
    if aliases:
        alias = _alias(spec, word, pc)
        if alias is not None:
            return alias
    return _plain(spec, word, pc)


def disassemble_program(image: bytes, base: int = 0, *, aliases: bool = True) -> str:
    """A whole image, one `address: word  instruction` line per word (a short tail is zero-padded)."""
    padded = image + b"\0" * (-len(image) % 4)
    lines = []
    for offset in range(0, len(padded), 4):
        word = int.from_bytes(padded[offset : offset + 4], "little")
        lines.append(f"{base + offset:8x}:\t{word:08x}\t{disassemble(word, base + offset, aliases=aliases)}")
    return "\n".join(lines) + "\n"
