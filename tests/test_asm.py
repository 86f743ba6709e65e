"""The assembler: syntax, pseudo-instructions, expressions, directives, layout, outputs and diagnostics.

Byte-for-byte agreement with GNU `as` over a broad corpus is in test_asm_binutils.py; these tests pin the
behaviour that needs no external tool, and every error class with its file:line:column.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from tessera.firmware.asm import Program, assemble, main
from tessera.firmware.asm_errors import (
    AsmError,
    AsmSyntaxError,
    DirectiveError,
    DuplicateSymbolError,
    ImmediateRangeError,
    MisalignedTargetError,
    OperandError,
    RegisterError,
    UndefinedSymbolError,
    UnknownMnemonicError,
)
from tessera.firmware.asm_expr import hi20, lo12
from tessera.firmware.asm_forms import li_words
from tessera.firmware.isa import (
    MASK32,
    Csr,
    Opcode,
    encode_b,
    encode_i,
    encode_j,
    encode_r,
    encode_s,
    encode_u,
    sign_extend,
)

A0, A1, A2, T0, T1, RA, SP = 10, 11, 12, 5, 6, 1, 2


def words(source: str, base: int = 0) -> list[int]:
    return assemble(source, base=base).words()


def addi(rd: int, rs1: int, imm: int) -> int:
    return encode_i(Opcode.OP_IMM, rd, 0, rs1, imm)


def lui(rd: int, imm20: int) -> int:
    return encode_u(Opcode.LUI, rd, imm20)


def auipc(rd: int, imm20: int) -> int:
    return encode_u(Opcode.AUIPC, rd, imm20)


def jalr(rd: int, rs1: int, imm: int) -> int:
    return encode_i(Opcode.JALR, rd, 0, rs1, imm)


def run_li(sequence: list[int]) -> int:
    """The register value a lui/addi sequence leaves (a two-instruction interpreter for li)."""
    value = 0
    for word in sequence:
        opcode = word & 0x7F
        if opcode == Opcode.LUI:
            value = word & 0xFFFFF000
        else:
            assert opcode == Opcode.OP_IMM and (word >> 12) & 7 == 0
            rs1_value = value if (word >> 15) & 31 else 0
            value = (rs1_value + sign_extend(word >> 20, 12)) & MASK32
    return value


# --- instructions and registers ----------------------------------------------------------------------


def test_real_instructions_encode() -> None:
    assert words("add a0, a1, a2\nsub x5, x6, x7\nsrai s1, fp, 31\nlw a0, -4(sp)\nsb a1, 2047(a0)") == [
        encode_r(Opcode.OP, A0, 0, A1, A2, 0),
        encode_r(Opcode.OP, T0, 0, T1, 7, 0x20),
        encode_i(Opcode.OP_IMM, 9, 5, 8, 0x400 | 31),
        encode_i(Opcode.LOAD, A0, 2, SP, -4),
        encode_s(Opcode.STORE, 0, A0, A1, 2047),
    ]


def test_register_names_abi_and_numeric() -> None:
    names = ["zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1"] + [f"a{i}" for i in range(8)]
    names += [f"s{i}" for i in range(2, 12)] + ["t3", "t4", "t5", "t6"]
    for number, name in enumerate(names):
        assert words(f"add {name}, x{number}, {name}") == [encode_r(Opcode.OP, number, 0, number, number, 0)]
    assert words("mv fp, s0") == words("mv x8, x8")


def test_mnemonics_and_registers_ignore_case() -> None:
    assert words("ADDI A0, ZERO, 1") == words("addi a0, zero, 1")


def test_branches_and_jumps_to_labels() -> None:
    source = "top: nop\n beq a0, a1, top\n bne a0, a1, end\n jal ra, top\n j end\nend: ret"
    assert words(source) == [
        addi(0, 0, 0),
        encode_b(Opcode.BRANCH, 0, A0, A1, -4),
        encode_b(Opcode.BRANCH, 1, A0, A1, 12),
        encode_j(Opcode.JAL, RA, -12),
        encode_j(Opcode.JAL, 0, 4),
        jalr(0, RA, 0),
    ]


def test_numeric_local_labels() -> None:
    source = "1: nop\n j 1f\n1: j 1b\n j 1b\n2: j 2f\n2: j 2b"
    assert words(source) == [
        addi(0, 0, 0),
        encode_j(Opcode.JAL, 0, 4),  # the next 1:
        encode_j(Opcode.JAL, 0, 0),  # its own line's 1: (defined before the instruction)
        encode_j(Opcode.JAL, 0, -4),
        encode_j(Opcode.JAL, 0, 4),
        encode_j(Opcode.JAL, 0, 0),
    ]


def test_pseudo_instructions() -> None:
    cases = {
        "nop": [addi(0, 0, 0)],
        "mv a0, a1": [addi(A0, A1, 0)],
        "not a0, a1": [encode_i(Opcode.OP_IMM, A0, 4, A1, -1)],
        "neg a0, a1": [encode_r(Opcode.OP, A0, 0, 0, A1, 0x20)],
        "seqz a0, a1": [encode_i(Opcode.OP_IMM, A0, 3, A1, 1)],
        "snez a0, a1": [encode_r(Opcode.OP, A0, 3, 0, A1, 0)],
        "sltz a0, a1": [encode_r(Opcode.OP, A0, 2, A1, 0, 0)],
        "sgtz a0, a1": [encode_r(Opcode.OP, A0, 2, 0, A1, 0)],
        "jr t0": [jalr(0, T0, 0)],
        "jalr t0": [jalr(RA, T0, 0)],
        "jalr a0, 8(a1)": [jalr(A0, A1, 8)],
        "ret": [jalr(0, RA, 0)],
        "beqz a0, 8": [encode_b(Opcode.BRANCH, 0, A0, 0, 8)],
        "bnez a0, 8": [encode_b(Opcode.BRANCH, 1, A0, 0, 8)],
        "blez a0, 8": [encode_b(Opcode.BRANCH, 5, 0, A0, 8)],
        "bgez a0, 8": [encode_b(Opcode.BRANCH, 5, A0, 0, 8)],
        "bltz a0, 8": [encode_b(Opcode.BRANCH, 4, A0, 0, 8)],
        "bgtz a0, 8": [encode_b(Opcode.BRANCH, 4, 0, A0, 8)],
        "bgt a0, a1, 8": [encode_b(Opcode.BRANCH, 4, A1, A0, 8)],
        "ble a0, a1, 8": [encode_b(Opcode.BRANCH, 5, A1, A0, 8)],
        "bgtu a0, a1, 8": [encode_b(Opcode.BRANCH, 6, A1, A0, 8)],
        "bleu a0, a1, 8": [encode_b(Opcode.BRANCH, 7, A1, A0, 8)],
        "csrr a0, mhartid": [encode_i(Opcode.SYSTEM, A0, 2, 0, sign_extend(Csr.MHARTID, 12))],
        "csrw cycle, a0": [encode_i(Opcode.SYSTEM, 0, 1, A0, sign_extend(Csr.CYCLE, 12))],
        "rdcycle a0": [encode_i(Opcode.SYSTEM, A0, 2, 0, sign_extend(Csr.CYCLE, 12))],
        "rdcycleh a0": [encode_i(Opcode.SYSTEM, A0, 2, 0, sign_extend(Csr.CYCLEH, 12))],
        "rdtime a0": [encode_i(Opcode.SYSTEM, A0, 2, 0, sign_extend(Csr.TIME, 12))],
        "rdinstret a0": [encode_i(Opcode.SYSTEM, A0, 2, 0, sign_extend(Csr.INSTRET, 12))],
        "fence": [0x0FF0000F],
        "fence rw, w": [encode_i(Opcode.MISC_MEM, 0, 0, 0, 0b0011_0001)],
        "fence.i": [0x0000100F],
        "ecall": [0x00000073],
        "ebreak": [0x00100073],
    }
    for source, expected in cases.items():
        assert words(source) == expected, source


def test_branch_targets_are_absolute_addresses() -> None:
    """A number as a branch or jump target is an address (as objdump prints it), not an offset."""
    assert words("beqz a0, 0x100", base=0x80) == [encode_b(Opcode.BRANCH, 0, A0, 0, 0x80)]
    assert words("j 0", base=0x1000) == [encode_j(Opcode.JAL, 0, -0x1000)]


def test_call_tail_la_are_pc_relative_pairs() -> None:
    source = "call f\ntail f\nla a0, d\n.space 0x1800\nf: ret\nd: .word 0"
    w = words(source)
    f, d = 8 * 3 + 0x1800, 8 * 3 + 0x1800 + 4
    assert w[:6] == [
        auipc(RA, hi20(f)),
        jalr(RA, RA, lo12(f)),
        auipc(T1, hi20(f - 8)),
        jalr(0, T1, lo12(f - 8)),
        auipc(A0, hi20(d - 16)),
        addi(A0, A0, lo12(d - 16)),
    ]


@pytest.mark.parametrize(
    "value, count",
    [(0, 1), (-2048, 1), (2047, 1), (2048, 2), (0x1000, 1), (0x80000000, 1), (0xFFFFFFFF, 1), (0x7FFFF800, 2),
     (0x12345678, 2), (-0x80000000, 1), (0xFFFFF800, 1), (0x7FFFFFFF, 2)],
)  # fmt: skip
def test_li_picks_gnu_sequence(value: int, count: int) -> None:
    sequence = words(f"li a0, {value}")
    assert len(sequence) == count
    assert run_li(sequence) == value & MASK32


def test_li_any_32_bit_value() -> None:
    rng = random.Random(7)
    for _ in range(300):
        value = rng.randrange(-(1 << 31), 1 << 32)
        assert run_li(words(f"li t0, {value}")) == value & MASK32
        assert 1 <= len(li_words(value)) <= 2


def test_hi_lo_rounding() -> None:
    rng = random.Random(3)
    edges = [0, 0x7FF, 0x800, 0xFFF, 0x12345800, 0xFFFFF800, 0x7FFFF800]
    for value in edges + [rng.randrange(1 << 32) for _ in range(200)]:
        assert ((hi20(value) << 12) + lo12(value)) & MASK32 == value
        lui_word, addi_word = words(f"lui a0, %hi({value})\naddi a0, a0, %lo({value})")
        assert run_li([lui_word, addi_word]) == value


def test_load_store_with_lo_and_symbol_pseudos() -> None:
    source = "lui a0, %hi(v)\nlw a1, %lo(v)(a0)\nsw a1, %lo(v)(a0)\nlw a2, v\nsw a2, v, t0\n.space 0x900\nv: .word 5"
    v = 7 * 4 + 0x900
    assert words(source)[:7] == [
        lui(A0, hi20(v)),
        encode_i(Opcode.LOAD, A1, 2, A0, lo12(v)),
        encode_s(Opcode.STORE, 2, A0, A1, lo12(v)),
        auipc(A2, hi20(v - 12)),
        encode_i(Opcode.LOAD, A2, 2, A2, lo12(v - 12)),
        auipc(T0, hi20(v - 20)),
        encode_s(Opcode.STORE, 2, T0, A2, lo12(v - 20)),
    ]


# --- expressions, constants, comments -----------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, value",
    [("1 + 2 * 3", 7), ("1 | 2 + 3", 6), ("(1 | 2) << 4", 48), ("-7 / 2", -3), ("-7 % 2", -1), ("~0 & 0xff", 255),
     ("1 << 3 >> 1", 4), ("0x10 ^ 0b11", 19), ("017", 15), ("'A'", 65), ("'\\n", 10), ("- -3", 3), ("!0 + !5", 1)],
)  # fmt: skip
def test_expressions_follow_gnu_precedence(expression: str, value: int) -> None:
    assert words(f".word {expression}") == [value & MASK32]


def test_equ_set_and_assignment() -> None:
    source = """
        .equ SIZE, 4 * 4
        .set MASK, SIZE - 1
        COUNT = MASK + 1
        addi a0, zero, COUNT
        .set MASK, 1
        addi a0, zero, MASK
        .word LATER
        .equ LATER, end - start
    start: nop
    end:
    """
    program = assemble(source)
    assert program.words() == [addi(A0, 0, 16), addi(A0, 0, 1), 4, addi(0, 0, 0)]
    assert program.symbols["SIZE"] == 16 and program.symbols["LATER"] == 4 and program.symbols["start"] == 12


def test_comments_and_statement_separators() -> None:
    source = 'nop # hash\nnop // slashes\n/* block\n spanning */ nop ; nop\n.ascii "#;//"\n'
    program = assemble(source)
    assert program.words() == [addi(0, 0, 0)] * 4 + [int.from_bytes(b"#;//", "little")]


def test_strings_and_escapes() -> None:
    program = assemble('.data\n.ascii "a\\tb", "\\x41\\101\\"\\\\"\n.asciz "z"\n.string ""')
    assert program.image == b'a\tbAA"\\z\0\0'


# --- directives and layout ----------------------------------------------------------------------------


def test_data_directives() -> None:
    source = ".data\n.byte 1, -1, 255\n.half 0x1234, -2\n.word -1, 0xdeadbeef\n.zero 2\n.space 2, 9\n.fill 2, 2, 0xabcd"
    assert assemble(source).image == bytes.fromhex("01ffff 3412feff ffffffff efbeadde 0000 0909 cdabcdab")


def test_alignment_directives() -> None:
    assert assemble(".data\n.byte 1\n.align 2\n.byte 2\n.balign 8, 0xee\n.byte 3\n.p2align 3,,2\n.byte 4").image == (
        bytes([1, 0, 0, 0, 2]) + b"\xee" * 3 + bytes([3, 4])
    )
    # Code is padded with nops (after a zero byte and a c.nop for odd gaps), as GNU does.
    nop, ret = bytes.fromhex("13000000"), bytes.fromhex("67800000")
    # ... and the end of the code is padded to the section's alignment (8 here).
    assert assemble(".byte 7\n.p2align 3\nret").image == bytes([7, 0, 1, 0]) + nop + ret + nop


def test_sections_are_laid_out_text_data_bss() -> None:
    source = ".data\nd: .word t\n.text\nt: nop\n.bss\nb: .zero 8\n.section .rodata\nr: .byte 1\n.section .text.x\nret"
    program = assemble(source, base=0x100)
    assert program.sections == {"text": (0x100, 8), "data": (0x108, 5), "bss": (0x110, 8)}
    assert program.symbols == {"d": 0x108, "t": 0x100, "b": 0x110, "r": 0x10C}
    assert program.image == (
        bytes.fromhex("13000000 67800000") + (0x100).to_bytes(4, "little") + b"\x01\0\0\0" + bytes(8)
    )
    assert program.base == 0x100 and program.words()[2] == 0x100


def test_base_moves_addresses_but_not_pc_relative_code() -> None:
    source = "la a0, x\nj x\nx: .word x"
    low, high = assemble(source), assemble(source, base=0x400)
    assert low.words()[:3] == high.words()[:3]
    assert low.words()[3] == 12 and high.words()[3] == 0x40C


def test_listing_has_address_bytes_and_source() -> None:
    program = assemble("start:\n  li a0, 0x12345678  # load\n.data\n  .byte 1, 2\n")
    lines = program.listing.splitlines()
    assert lines[0].split() == ["00000000", "1", "start:"]
    assert lines[1].split()[:3] == ["00000000", "12345537", "2"] and lines[1].endswith("li a0, 0x12345678  # load")
    assert lines[2].split() == ["00000004", "67850513"]
    assert lines[4].split()[:4] == ["00000008", "01", "02", "4"]


def test_listing_shortens_large_data() -> None:
    rows = assemble(".data\n.zero 4096\n.word 1").listing.splitlines()
    assert len(rows) == 7
    assert rows[5].split() == ["...", "4096", "bytes", "in", "all"]
    assert rows[6].split() == ["00001000", "01", "00", "00", "00", "3", ".word", "1"]


def test_symbol_table_text(tmp_path: Path) -> None:
    program = assemble(".globl main\nmain: nop\nloop: j loop\n.equ K, 3")
    assert program.symbol_table() == "00000000 main\n00000003 K\n00000004 loop\n"
    assert program.globals == {"main"}


# --- command line -------------------------------------------------------------------------------------


def test_cli_writes_image_listing_symbols(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "prog.s"
    source.write_text("main: li a0, 1\n ecall\n")
    out, lst, hexfile = tmp_path / "prog.bin", tmp_path / "prog.lst", tmp_path / "prog.hex"
    assert main([str(source), "-o", str(out), "--listing", str(lst), "--hex", str(hexfile), "--symbols"]) == 0
    assert out.read_bytes() == assemble(source.read_text()).image
    assert "ecall" in lst.read_text()
    assert hexfile.read_text() == "00100513\n00000073\n"
    assert capsys.readouterr().out == "00000000 main\n"


def test_cli_reports_all_errors_with_locations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bad.s"
    source.write_text("nop\n  frob a0\naddi a0, a0, 5000\n")
    assert main([str(source), "-o", str(tmp_path / "x.bin")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{source}:2:3: unknown instruction 'frob'"]  # pass-1 errors stop before encoding
    source.write_text("addi a0, a0, 5000\nj nowhere\n")
    assert main([str(source)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{source}:1:14: immediate 5000 out of range [-2048, 2047]"
    assert err[1] == f"{source}:2:3: undefined symbol 'nowhere'"


def test_module_entry_point(tmp_path: Path) -> None:
    source = tmp_path / "p.s"
    source.write_text("ret\n")
    result = subprocess.run(
        [sys.executable, "-m", "tessera.firmware.asm", str(source), "-o", str(tmp_path / "p.bin"), "--symbols"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p.bin").read_bytes() == (0x00008067).to_bytes(4, "little")


# --- diagnostics: every error class, located ----------------------------------------------------------


def error_of(source: str) -> AsmError:
    with pytest.raises(AsmError) as info:
        assemble(source, filename="t.s")
    return info.value


@pytest.mark.parametrize(
    "source, kind, where, text",
    [
        ("nop\n  addx a0, a1, a2", UnknownMnemonicError, "2:3", "unknown instruction 'addx'"),
        ("add a0, a1", OperandError, "1:1", "'add' takes 'add rd, rs1, rs2'"),
        ("ret a0", OperandError, "1:1", "got 1 operand"),
        ("beq a0, 5, 0", OperandError, "1:9", "expected a register, found '5'"),
        ("sw a0, 4", OperandError, "1:8", "expected offset(register)"),
        ("li a0, a1", OperandError, "1:8", "found register 'a1'"),
        ("fence rw, x", OperandError, "1:11", "fence set"),
        ("add a0, a1, a8", RegisterError, "1:13", "unknown register 'a8'"),
        ("lw a0, 4(q0)", RegisterError, "1:10", "unknown register 'q0'"),
        ("add x32, a1, a2", RegisterError, "1:5", "unknown register 'x32'"),
        ("addi a0, a0, 2048", ImmediateRangeError, "1:14", "immediate 2048 out of range [-2048, 2047]"),
        ("lw a0, -2049(a1)", ImmediateRangeError, "1:8", "offset -2049 out of range [-2048, 2047]"),
        ("slli a0, a0, 32", ImmediateRangeError, "1:14", "shift amount 32 out of range [0, 31]"),
        ("lui a0, 0x100000", ImmediateRangeError, "1:9", "upper immediate 1048576 out of range [0, 1048575]"),
        (
            "li a0, 0x100000000",
            ImmediateRangeError,
            "1:8",
            "li value 4294967296 out of range [-2147483648, 4294967295]",
        ),
        ("csrrwi a0, cycle, 32", ImmediateRangeError, "1:19", "CSR immediate 32 out of range [0, 31]"),
        ("csrr a0, 4096", ImmediateRangeError, "1:10", "CSR number 4096 out of range [0, 4095]"),
        (".byte 256", ImmediateRangeError, "1:7", ".byte value 256 out of range [-128, 255]"),
        (".half -32769", ImmediateRangeError, "1:7", "out of range"),
        ("beq a0, a1, far\n.space 4096\nfar: nop", ImmediateRangeError, "1:13", "out of range [-4096, 4094]"),
        ("j 0x100000", ImmediateRangeError, "1:3", "out of range [-1048576, 1048574]"),
        ("li a0, later\nlater:", OperandError, "1:8", "li needs a constant defined before this line"),
        ("addi a0, a0, %pcrel_lo(x)\nx: nop", OperandError, "1:14", "%pcrel_lo needs the label of an earlier auipc"),
        (".equ a, b + 1\n.equ b, a\n.word a", OperandError, "2:9", "defined in terms of itself"),
        ("addi a0, a0, %foo(1)", OperandError, "1:14", "unknown relocation function %foo"),
        ("j nowhere", UndefinedSymbolError, "1:3", "undefined symbol 'nowhere'"),
        (".word 1, missing + 4", UndefinedSymbolError, "1:10", "undefined symbol 'missing'"),
        ("j 1f", UndefinedSymbolError, "1:3", "no local label '1:' after this line"),
        ("x: nop\n  x: nop", DuplicateSymbolError, "2:3", "symbol 'x' is already defined at line 1"),
        (".equ k, 1\nk: nop", DuplicateSymbolError, "2:1", "already defined"),
        ("j odd\n.byte 0\nodd: nop", MisalignedTargetError, "1:3", "jump target 0x5 is not a multiple of 4"),
        ("bnez a0, 6", MisalignedTargetError, "1:10", "branch target 0x6"),
        (".frobnicate 3", DirectiveError, "1:1", "unknown directive '.frobnicate'"),
        (".section .weird", DirectiveError, "1:10", "unknown section '.weird'"),
        (".bss\n.word 1", DirectiveError, "2:1", "only zeros"),
        (".bss\nnop", DirectiveError, "2:1", "instructions cannot go in .bss"),
        (".zero later\nlater:", OperandError, "1:7", "size must be a constant defined before this line"),
        (".align 17", OperandError, "1:8", "alignment 17 out of range [0, 16]"),
        ('.ascii "open', AsmSyntaxError, "1:8", "unterminated string"),
        ("addi a0, a0, (1 + 2", AsmSyntaxError, "1:19", "expression ends too early"),
        ("addi a0, a0, (1 + 2 3)", AsmSyntaxError, "1:21", "expected ')', found '3'"),
        ("addi a0, a0, 1 $", AsmSyntaxError, "1:16", "unexpected '$'"),
        ("nop\n/* never closed", AsmSyntaxError, "2:1", "unterminated /* comment"),
        (".word 1 / 0", OperandError, "1:9", "division by zero"),
    ],
)
def test_errors_are_located_and_classified(source: str, kind: type[AsmError], where: str, text: str) -> None:
    error = error_of(source)
    assert type(error) is kind, error
    assert str(error).startswith(f"t.s:{where}: "), str(error)
    assert text in error.message, error.message


def test_all_errors_are_reported_in_source_order() -> None:
    error = error_of("addi a0, a0, 9999\nj nowhere\n  slli a0, a0, 40\n")
    assert [type(e) for e in error.errors] == [ImmediateRangeError, UndefinedSymbolError, ImmediateRangeError]
    assert [e.location.line for e in error.errors] == [1, 2, 3]
    assert error is error.errors[0]


def test_bad_base_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        assemble("nop", base=2)


def test_program_words_pad_the_tail() -> None:
    program: Program = assemble(".data\n.byte 1, 2, 3, 4, 5")
    assert program.words() == [0x04030201, 0x00000005]
    # In .text, GNU pads the end of code to a whole word with code fill (a zero byte, then a c.nop here).
    assert assemble(".byte 1, 2, 3, 4, 5").image == bytes([1, 2, 3, 4, 5, 0, 1, 0])
