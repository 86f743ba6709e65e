"""Cross-check the assembler and disassembler against GNU binutils (riscv64-unknown-elf-*).

A broad corpus (every instruction and pseudo-instruction, edge immediates, %hi/%lo, local and global labels,
directives) is assembled by both, byte for byte; symbol values are compared with `nm`; the disassembler is
compared with `objdump -d` with and without `-M no-aliases`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tessera.firmware.asm import Program, assemble
from tessera.firmware.disasm import disassemble
from tessera.firmware.insn_table import INSTRUCTIONS, Format
from tessera.firmware.isa import Opcode

PREFIX = "riscv64-unknown-elf-"
TOOLS = ("as", "ld", "objcopy", "nm", "objdump")
MARCH = "rv32i_zicsr_zifencei"  # newer binutils need the extensions named for CSR and fence.i instructions
LINKER_SCRIPT = """
SECTIONS {
  .text 0 : { *(.text) }
  . = ALIGN(4);
  .data : { *(.data) }
  . = ALIGN(4);
  .bss : { *(.bss) }
}
"""

pytestmark = pytest.mark.skipif(
    any(shutil.which(PREFIX + tool) is None for tool in TOOLS),
    reason=f"GNU RISC-V binutils ({PREFIX}as ...) not on PATH",
)

REGS = ["zero", "ra", "sp", "gp", "tp", "t0", "s0", "fp", "a0", "a7", "s11", "t6", "x0", "x1", "x15", "x31"]
IMM12 = [-2048, -2047, -1, 0, 1, 7, 2046, 2047]


def _reg(i: int) -> str:
    return REGS[i % len(REGS)]


def _instruction_lines() -> list[str]:
    """Every real instruction of the table with rotating registers and edge immediates."""
    lines = []
    n = 0
    # GNU as does not know Tessera's msg.* mnemonics: tests/test_asm_message.py checks them against `.insn r`.
    for spec in (spec for spec in INSTRUCTIONS if spec.opcode != Opcode.CUSTOM0):
        m = spec.mnemonic
        for k in range(4):
            rd, rs1, rs2 = _reg(n), _reg(n + 5), _reg(n + 11)
            imm = IMM12[(n + k) % len(IMM12)]
            n += 1
            fmt = spec.format
            if fmt is Format.R:
                lines.append(f"{m} {rd}, {rs1}, {rs2}")
            elif fmt is Format.I:
                lines.append(f"{m} {rd}, {rs1}, {imm}")
            elif fmt is Format.SHIFT:
                lines.append(f"{m} {rd}, {rs1}, {(0, 1, 17, 31)[k]}")
            elif fmt is Format.LOAD:
                lines.append(f"{m} {rd}, {imm}({rs1})")
            elif fmt is Format.STORE:
                lines.append(f"{m} {rs2}, {imm}({rs1})")
            elif fmt is Format.JALR:
                lines.append(f"{m} {rd}, {imm}({rs1})")
            elif fmt is Format.BRANCH:
                lines.append(f"{m} {rs1}, {rs2}, {('back', 'fwd', '1b', '1f')[k]}")
            elif fmt is Format.U:
                lines.append(f"{m} {rd}, {(0, 1, 0x80000, 0xFFFFF)[k]}")
            elif fmt is Format.JAL:
                lines.append(f"{m} {rd}, {('back', 'fwd', '1b', '1f')[k]}")
            elif fmt is Format.CSR:
                lines.append(f"{m} {rd}, {('cycle', 'timeh', 'instreth', 'mhartid')[k]}, {rs1}")
            elif fmt is Format.CSRI:
                lines.append(f"{m} {rd}, {('cycleh', 'time', 'instret', 0xF14)[k]}, {(0, 1, 17, 31)[k]}")
            elif fmt is Format.FENCE:
                lines.append(f"{m} {('iorw', 'rw', 'i', 'ow')[k]}, {('iorw', 'w', 'r', 'io')[k]}")
            else:
                lines.append(m)
                break
    return lines


LI_VALUES = [
    0, 1, -1, 2047, -2048, 2048, -2049, 0x800, 0xFFF, 0x1000, 0x7FF, 0x12345678, 0x7FFFFFFF, 0x80000000,
    0xFFFFFFFF, 0xFFFFF800, 0xFFFFF7FF, 0x7FFFF800, 0x7FFFF7FF, -0x80000000, 0xDEADBEEF, 0x00012000, 0x12345FFF,
]  # fmt: skip

PSEUDO_LINES = """
    nop
    mv a0, a1
    not t0, t1
    neg s1, a2
    seqz a0, a1
    snez a2, a3
    sltz a4, a5
    sgtz a6, a7
    j back
    j fwd
    jal back
    jal fwd
    jr a0
    jr 8(a1)
    jr t0, -4
    jalr a0
    jalr 12(a1)
    jalr a2, 16
    jalr a3, a4
    ret
    call far
    call t0, far
    tail far
    jump far, t0
    add a0, a1, -5
    and a2, a3, 0x7f
    sra a4, a5, 3
    csrrs a0, cycle, 0
    csrw mhartid, 3
    la a0, far
    lla a1, data_start
    lw a2, far
    lbu a3, msg
    sw a4, far, t1
    sb a5, msg, t2
    beqz a0, back
    bnez a0, fwd
    blez a1, back
    bgez a1, fwd
    bltz a2, 1b
    bgtz a2, 1f
    bgt a0, a1, back
    ble a0, a1, fwd
    bgtu a2, a3, 1b
    bleu a2, a3, 1f
    csrr a0, cycle
    csrr a1, mhartid
    csrw mhartid, a0
    csrs cycle, a1
    csrc time, a2
    csrwi instret, 5
    csrsi cycleh, 31
    csrci timeh, 0
    rdcycle a0
    rdcycleh a1
    rdtime a2
    rdtimeh a3
    rdinstret a4
    rdinstreth a5
    fence
    fence rw, rw
    fence.i
    unimp
    zext.b a0, a1
    ecall
    ebreak
"""

EXPRESSION_LINES = """
    .equ ANSWER, 42
    .set MASK, (1 << 12) - 1
    SHIFTED = ANSWER << 4
    addi a0, a0, ANSWER
    addi a0, a0, -ANSWER
    addi a0, a0, ~ANSWER
    addi a0, a0, MASK & 0x3ff
    addi a0, a0, (ANSWER * 3 - 2) / 4
    addi a0, a0, 1 | 2 + 3
    addi a0, a0, 100 % 7
    addi a0, a0, SHIFTED >> 2
    addi a0, a0, 0x7f ^ 0x0f
    addi a0, a0, 'a
    addi a0, a0, 017
    addi a0, a0, 0b1011
    li a0, ANSWER * 1000
    li a1, SHIFTED - ANSWER
    lui a0, %hi(far)
    addi a0, a0, %lo(far)
    lui a1, %hi(msg + 0x7ff)
    lw a1, %lo(msg + 0x7ff)(a1)
    lui a2, %hi(0x12345800)
    sw a2, %lo(0x12345800)(a2)
    lui a3, %hi(0xfffff800)
    addi a3, a3, %lo(0xfffff800)
2:  auipc a4, %pcrel_hi(msg)
    addi a4, a4, %pcrel_lo(2b)
    lw a5, %pcrel_lo(2b)(a4)
    sw a5, %pcrel_lo(2b)(a4)
"""


def corpus() -> str:
    body = [".text", ".globl start", "start:", "back:", "1: nop"]
    body += [f"    {line}" for line in _instruction_lines()]
    body += [f"    li a{i % 8}, {value}" for i, value in enumerate(LI_VALUES)]
    body += ["1:", PSEUDO_LINES, "1:", EXPRESSION_LINES]
    body += [
        "fwd: nop",
        "    beq a0, a1, reach_fwd",  # branch offsets at the edges of their range
        "    .space 4088",
        "reach_fwd: bne a0, a1, reach_back_target",
        "    .byte 0x5a",
        "    .p2align 3",  # GNU pads code with zero byte, c.nop, nops
        "    .half 0x1234",
        "    .balign 16",
        "    .align 2",
        "    .zero 6",
        "    .align 3",
        "reach_back_target: nop",
        "far: ret",
        ".data",
        "data_start: .word 0x11223344, -1, 0xffffffff, far, far - start, . - data_start",
        "    .half 0xbeef, -2",
        "    .byte 1, 2, 0xff, -128",
        'msg: .ascii "hi\\t\\"there\\"\\n", "\\x41\\101"',
        '    .asciz "zero"',
        '    .string "str"',
        "    .p2align 2",
        "    .2byte 3",
        "    .4byte 4",
        "    .short 5",
        "    .long 6",
        "    .int 7",
        "    .balign 8, 0xee",
        "    .space 3, 0x7",
        "    .skip 2",
        "    .align 4, 0x55",
        "    .fill 3, 2, 0x1234",
        "    .word 1f, 2f",
        "1:  .byte 9",
        "2:  .byte 10",
        ".section .text",
        "    addi a0, a0, 1",
        ".section .data",
        "    .byte 11",
        ".bss",
        "bss_start: .zero 24",
        "    .align 3",
        "buffer: .space 40",
        ".section .bss",
        "tail_sym: .skip 5",
    ]
    return "\n".join(body) + "\n"


def _run(*cmd: str | Path) -> str:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def gnu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("gnu")
    (tmp / "corpus.s").write_text(corpus())
    (tmp / "link.ld").write_text(LINKER_SCRIPT)
    _run(PREFIX + "as", f"-march={MARCH}", "-mabi=ilp32", "-mno-relax", "-o", tmp / "corpus.o", tmp / "corpus.s")
    _run(PREFIX + "ld", "-m", "elf32lriscv", "--no-warn-rwx-segments", "-T", tmp / "link.ld",
         "-o", tmp / "corpus.elf", tmp / "corpus.o")  # fmt: skip
    _run(PREFIX + "objcopy", "-O", "binary", tmp / "corpus.elf", tmp / "corpus.bin")
    symbols = {}
    for line in _run(PREFIX + "nm", tmp / "corpus.elf").splitlines():
        value, _kind, name = line.split()
        if not name.startswith("$"):  # mapping symbols
            symbols[name] = int(value, 16)
    return {
        "image": (tmp / "corpus.bin").read_bytes(),
        "symbols": symbols,
        "objdump": _run(PREFIX + "objdump", "-d", "-j", ".text", tmp / "corpus.elf"),
        "objdump_raw": _run(PREFIX + "objdump", "-d", "-M", "no-aliases", "-j", ".text", tmp / "corpus.elf"),
    }


@pytest.fixture(scope="module")
def ours() -> Program:
    return assemble(corpus(), "corpus.s")


def _listing_row(program: Program, address: int) -> str:
    key = f"{address:08x}"
    return next((row for row in program.listing.splitlines() if row.startswith(key)), "?")


def test_corpus_is_broad() -> None:
    """The corpus uses every mnemonic the assembler knows (real and pseudo) except Tessera's own message
    instructions, which GNU as does not know (tests/test_asm_message.py checks those against `.insn r`)."""
    from tessera.firmware.asm_forms import FORMS

    text = corpus()
    used = {m.group(1).lower() for m in re.finditer(r"^\s*(?:\w+:\s*)?([a-z][\w.]*)\b", text, re.MULTILINE)}
    tessera_only = {spec.mnemonic for spec in INSTRUCTIONS if spec.opcode == Opcode.CUSTOM0}
    assert set(FORMS) - used == tessera_only


def test_image_matches_gnu_as(gnu: dict[str, object], ours: Program) -> None:
    gnu_image = gnu["image"]
    assert isinstance(gnu_image, bytes)
    data_start, data_size = ours.sections["data"]
    bss_start, bss_size = ours.sections["bss"]
    assert data_size > 0 and bss_size > 0
    # objcopy stops at the end of .data (.bss has no contents); ours carries .bss as zeros.
    assert len(gnu_image) == data_start + data_size
    assert len(ours.image) == bss_start + bss_size
    expected = gnu_image + bytes(len(ours.image) - len(gnu_image))
    for offset in range(0, len(expected), 4):
        mine, theirs = ours.image[offset : offset + 4], expected[offset : offset + 4]
        assert mine == theirs, f"{offset:#x}: ours {mine.hex()} gnu {theirs.hex()}: {_listing_row(ours, offset)}"


def test_symbols_match_gnu_nm(gnu: dict[str, object], ours: Program) -> None:
    theirs = gnu["symbols"]
    assert isinstance(theirs, dict)
    mine = {name: value & 0xFFFFFFFF for name, value in ours.symbols.items()}
    assert mine == theirs
    assert ours.globals == {"start"}


def _objdump_lines(text: str) -> list[tuple[int, int, str]]:
    """(address, word, instruction) rows of objdump -d, with objdump's target notation turned into ours."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+([0-9a-f]{8})\s+(.*)$", line)
        if not m:
            continue
        insn = re.sub(r"\s*#.*$", "", m.group(3)).strip()
        insn = re.sub(r"\s*<[^>]*>$", "", insn)
        mnemonic, _, operands = insn.partition("\t")
        if mnemonic in ("j", "jal", "beqz", "bnez", "blez", "bgez", "bltz", "bgtz") or mnemonic.startswith("b"):
            # objdump writes targets as bare hex: make it 0x-prefixed like ours.
            operands = re.sub(r"(^|,)([0-9a-f]+)$", lambda t: f"{t.group(1)}{int(t.group(2), 16):#x}", operands)
        rows.append((int(m.group(1), 16), int(m.group(2), 16), f"{mnemonic}\t{operands}" if operands else mnemonic))
    return rows


@pytest.mark.parametrize("aliases", [True, False], ids=["aliases", "no-aliases"])
def test_disassembler_matches_objdump(gnu: dict[str, object], aliases: bool) -> None:
    text = gnu["objdump" if aliases else "objdump_raw"]
    assert isinstance(text, str)
    rows = _objdump_lines(text)
    assert len(rows) > 300
    mismatches = []
    for address, word, expected in rows:
        if expected.startswith("0x") or expected.startswith("."):
            continue  # data words inside .text (objdump prints those its own way)
        got = disassemble(word, address, aliases=aliases)
        if got != expected:
            mismatches.append(f"{address:#x} {word:08x}: ours {got!r} objdump {expected!r}")
    assert not mismatches, "\n".join(mismatches[:20])
