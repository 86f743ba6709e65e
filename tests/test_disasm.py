"""The disassembler: objdump's syntax in both modes, unknown words, and assemble(disassemble(w)) == w.

Agreement with objdump itself over the whole assembler corpus is in test_asm_binutils.py.
"""

from __future__ import annotations

import random

import pytest
from tessera.firmware import asm_forms, insn_table
from tessera.firmware.asm import assemble
from tessera.firmware.disasm import disassemble, disassemble_program
from tessera.firmware.insn_table import INSTRUCTIONS, Format, InsnSpec, encode_spec
from tessera.firmware.isa import Opcode, encode_i, encode_r

CASES = [
    # word, pc, no-aliases, aliases
    (0x00000013, 0, "addi\tzero,zero,0", "nop"),
    (0x00A00513, 0, "addi\ta0,zero,10", "li\ta0,10"),
    (0x00058513, 0, "addi\ta0,a1,0", "mv\ta0,a1"),
    (0xFFF58513, 0, "addi\ta0,a1,-1", "add\ta0,a1,-1"),
    (0xFFF5C513, 0, "xori\ta0,a1,-1", "not\ta0,a1"),
    (0x40B00533, 0, "sub\ta0,zero,a1", "neg\ta0,a1"),
    (0x0015B513, 0, "sltiu\ta0,a1,1", "seqz\ta0,a1"),
    (0x00B03533, 0, "sltu\ta0,zero,a1", "snez\ta0,a1"),
    (0x01F59513, 0, "slli\ta0,a1,0x1f", "sll\ta0,a1,0x1f"),
    (0x123455B7, 0, "lui\ta1,0x12345", "lui\ta1,0x12345"),
    (0xFFC12503, 0, "lw\ta0,-4(sp)", "lw\ta0,-4(sp)"),
    (0x00B12423, 0, "sw\ta1,8(sp)", "sw\ta1,8(sp)"),
    (0x00008067, 0, "jalr\tzero,0(ra)", "ret"),
    (0x00050067, 0, "jalr\tzero,0(a0)", "jr\ta0"),
    (0x000500E7, 0, "jalr\tra,0(a0)", "jalr\ta0"),
    (0x0100006F, 0x100, "jal\tzero,0x110", "j\t0x110"),
    (0xFF1FF0EF, 0x100, "jal\tra,0xf0", "jal\t0xf0"),
    (0xFE050EE3, 0x20, "beq\ta0,zero,0x1c", "beqz\ta0,0x1c"),
    (0x00A05463, 0, "bge\tzero,a0,0x8", "blez\ta0,0x8"),
    (0x00B54463, 0, "blt\ta0,a1,0x8", "blt\ta0,a1,0x8"),
    (0xFE000EE3, 0, "beq\tzero,zero,0xfffffffc", "beqz\tzero,0xfffffffc"),
    (0xC0002573, 0, "csrrs\ta0,cycle,zero", "rdcycle\ta0"),
    (0xF1402573, 0, "csrrs\ta0,mhartid,zero", "csrr\ta0,mhartid"),
    (0x7C002573, 0, "csrrs\ta0,0x7c0,zero", "csrr\ta0,0x7c0"),
    (0xF1451073, 0, "csrrw\tzero,mhartid,a0", "csrw\tmhartid,a0"),
    (0xC0106573, 0, "csrrsi\ta0,time,0", "csrrs\ta0,time,0"),
    (0x0FF0000F, 0, "fence\tiorw,iorw", "fence"),
    (0x0310000F, 0, "fence\trw,w", "fence\trw,w"),
    (0x0000100F, 0, "fence.i", "fence.i"),
    (0x00000073, 0, "ecall", "ecall"),
    (0x00100073, 0, "ebreak", "ebreak"),
    (0xC0001073, 0, "unimp", "unimp"),
]


@pytest.mark.parametrize("word, pc, plain, alias", CASES, ids=[f"{c[0]:08x}" for c in CASES])
def test_objdump_syntax(word: int, pc: int, plain: str, alias: str) -> None:
    assert disassemble(word, pc, aliases=False) == plain
    assert disassemble(word, pc) == alias


@pytest.mark.parametrize(
    "word",
    [
        0x00000000,  # all zeros: illegal on a tile
        0xFFFFFFFF,  # all ones
        0x40159513,  # slli with funct7 = 0x20
        0x02B50533,  # mul: not RV32I
        0x80F0000F,  # fence with fm = 8
        0x0FF5000F,  # fence with rs1 != 0
        0x00F0000F,  # fence with an empty predecessor set
        0x0000500B,  # custom-0 with a funct3 that is no message instruction
        0x0200700B,  # custom-0 funct3 7 (msg.fault) with funct7 = 1
        0x00200073,  # a SYSTEM word that is neither ecall nor ebreak
        0x0000B003,  # load with funct3 = 3 (ld): not RV32I
    ],
)
def test_unknown_words_are_data(word: int) -> None:
    assert disassemble(word) == f".word\t{word:#010x}"
    assert disassemble(word, aliases=False) == f".word\t{word:#010x}"
    assert assemble(disassemble(word)).words() == [word]


def _random_word(spec: InsnSpec, rng: random.Random) -> int:
    """A random valid encoding of spec (branch and jump targets word-aligned, as a tile requires)."""
    rd, rs1, rs2 = rng.randrange(32), rng.randrange(32), rng.randrange(32)
    fmt = spec.format
    imm = {
        Format.I: rng.randrange(-2048, 2048),
        Format.LOAD: rng.randrange(-2048, 2048),
        Format.STORE: rng.randrange(-2048, 2048),
        Format.JALR: rng.randrange(-2048, 2048),
        Format.SHIFT: rng.randrange(32),
        Format.U: rng.randrange(1 << 20),
        Format.BRANCH: rng.randrange(-1024, 1024) * 4,
        Format.JAL: rng.randrange(-(1 << 18), 1 << 18) * 4,
        Format.CSR: rng.randrange(4096),
        Format.CSRI: rng.randrange(4096),
        Format.FENCE: rng.randrange(1, 16) << 4 | rng.randrange(1, 16),
    }.get(fmt, 0)
    return encode_spec(spec, rd=rd, rs1=rs1, rs2=rs2, imm=imm)


@pytest.mark.parametrize("aliases", [False, True], ids=["no-aliases", "aliases"])
def test_round_trip_random_valid_words(aliases: bool) -> None:
    rng = random.Random(2024)
    for _ in range(700):
        spec = rng.choice(INSTRUCTIONS)
        word = _random_word(spec, rng)
        pc = rng.randrange(0, 1 << 16) * 4
        text = disassemble(word, pc, aliases=aliases)
        assert not text.startswith(".word"), (spec.mnemonic, hex(word))
        assert assemble(text, base=pc).words() == [word], f"{word:08x} at {pc:#x}: {text}"


def test_custom_r_type_instruction_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom-0 R-type entry needs no code beyond its table entry: forms and decoding follow its format.
    (The tables are built from INSTRUCTIONS at import; the patch does what adding the entry there does.)"""
    spec = InsnSpec("msg.test", Format.R, Opcode.CUSTOM0, funct3=3, funct7=5)
    monkeypatch.setattr(insn_table, "INSTRUCTIONS", (*insn_table.INSTRUCTIONS, spec))
    monkeypatch.setitem(asm_forms.FORMS, spec.mnemonic, asm_forms.real_forms(spec))
    word = encode_r(Opcode.CUSTOM0, 10, 3, 11, 12, 5)
    assert assemble("msg.test a0, a1, a2").words() == [word]
    assert disassemble(word) == "msg.test\ta0,a1,a2"
    assert disassemble(word ^ 1 << 26) == f".word\t{word ^ 1 << 26:#010x}"  # another funct7


def test_disassemble_program_lists_every_word() -> None:
    program = assemble("li a0, 5\nloop: j loop\n.word 0")
    assert disassemble_program(program.image, 0x40) == (
        "      40:\t00500513\tli\ta0,5\n      44:\t0000006f\tj\t0x44\n      48:\t00000000\t.word\t0x00000000\n"
    )
    assert encode_i(Opcode.OP_IMM, 10, 0, 0, 5) == program.words()[0]
