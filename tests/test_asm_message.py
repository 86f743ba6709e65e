"""The message instructions (custom-0, docs/network.md) in the assembler, the disassembler and the models.

Encodings come from `isa.MessageOp` (re-exported by `hw.noc_layouts`, used by the gateware); GNU as cross-checks
them through `.insn r` when binutils are installed. Disassembly reads back to the same word for every register
choice, in the short syntax or the full one.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from tessera.firmware.asm import assemble
from tessera.firmware.asm_errors import OperandError
from tessera.firmware.disasm import disassemble
from tessera.firmware.insn_table import BY_MNEMONIC, MESSAGE_OPERANDS
from tessera.firmware.isa import Cause, MessageOp, Opcode, encode_r
from tessera.hw import noc_layouts, tile_node
from tessera.sim.model import TileModel
from tessera.sim.noc_model import NocModel, NodeUnit

#: Registers for each operand name in the examples: a0 = x10, a1 = x11, a2 = x12.
EXAMPLE_REGISTERS = {"rd": ("a0", 10), "rs1": ("a1", 11), "rs2": ("a2", 12)}

#: docs/network.md's operand column, spelled out (independent of the table under test).
DOCUMENTED_SYNTAX = {
    "msg.put": "msg.put a1",
    "msg.send": "msg.send a1, a2",
    "msg.trysend": "msg.trysend a0, a1, a2",
    "msg.recv": "msg.recv a0",
    "msg.tryrecv": "msg.tryrecv a0",
    "msg.recvt": "msg.recvt a0, a1",
    "msg.get": "msg.get a0",
    "msg.count": "msg.count a0",
    "msg.status": "msg.status a0",
    "msg.fault": "msg.fault a1",
}


def _word(op: MessageOp, rd: int = 0, rs1: int = 0, rs2: int = 0) -> int:
    return encode_r(Opcode.CUSTOM0, rd, op.funct3, rs1, rs2, op.funct7)


def test_gateware_and_assembler_share_one_definition() -> None:
    assert noc_layouts.MessageOp is MessageOp
    assert tile_node.FAULT_FUNCT3 == MessageOp.FAULT.funct3 and MessageOp.FAULT.funct7 == 0
    assert {op.mnemonic for op in MessageOp} == set(DOCUMENTED_SYNTAX)


@pytest.mark.parametrize("op", list(MessageOp), ids=lambda op: op.mnemonic)
def test_documented_syntax_encodes_as_message_op(op: MessageOp) -> None:
    used = {name: number for name, (_, number) in EXAMPLE_REGISTERS.items() if name in MESSAGE_OPERANDS[op]}
    word = _word(op, **used)
    assert word & 0x7F == Opcode.CUSTOM0 and (word >> 12) & 7 == op.funct3 and word >> 25 == op.funct7
    assert assemble(DOCUMENTED_SYNTAX[op.mnemonic]).words() == [word]
    assert assemble(f"{op.mnemonic} a0, a1, a2").words() == [_word(op, 10, 11, 12)]  # the full syntax
    text = disassemble(word)
    assert text == DOCUMENTED_SYNTAX[op.mnemonic].replace(", ", ",").replace(" ", "\t", 1)
    assert disassemble(word, aliases=False) == text


def test_round_trip_every_register_choice() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        op = rng.choice(list(MessageOp))
        # Half the words use only the instruction's operands, half set the unused fields too.
        fields = {name: rng.randrange(32) for name in ("rd", "rs1", "rs2")}
        if rng.random() < 0.5:
            fields = {name: value if name in MESSAGE_OPERANDS[op] else 0 for name, value in fields.items()}
        word = _word(op, **fields)
        text = disassemble(word)
        assert text.startswith(op.mnemonic + "\t"), (hex(word), text)
        assert assemble(text).words() == [word], f"{word:#010x}: {text}"


def test_other_custom0_fields_stay_data() -> None:
    for funct3 in range(8):
        for funct7 in range(128):
            word = encode_r(Opcode.CUSTOM0, 1, funct3, 2, 3, funct7)
            expected = MessageOp.decode(funct3, funct7)
            text = disassemble(word)
            assert text.startswith(expected.mnemonic) if expected is not None else text == f".word\t{word:#010x}", text


def test_wrong_operands_are_named() -> None:
    with pytest.raises(OperandError, match="msg.recv"):
        assemble("msg.recv a0, a1")
    with pytest.raises(OperandError):
        assemble("msg.send a1, 5")
    assert BY_MNEMONIC["msg.put"].operands == ("rs1",)


@pytest.mark.skipif(shutil.which("riscv64-unknown-elf-as") is None, reason="GNU RISC-V binutils not on PATH")
def test_encodings_match_gnu_insn_directive(tmp_path: Path) -> None:
    lines = [f".insn r {Opcode.CUSTOM0:#x}, {op.funct3}, {op.funct7}, a0, a1, a2" for op in MessageOp]
    source = tmp_path / "msg.s"
    source.write_text("\n".join(lines) + "\n")
    obj, raw = tmp_path / "msg.o", tmp_path / "msg.bin"
    subprocess.run(["riscv64-unknown-elf-as", "-march=rv32i", "-o", obj, source], check=True)
    subprocess.run(["riscv64-unknown-elf-objcopy", "-O", "binary", "-j", ".text", obj, raw], check=True)
    gnu = raw.read_bytes()
    ours = assemble("\n".join(f"{op.mnemonic} a0, a1, a2" for op in MessageOp)).image
    assert ours == gnu


def _fault_program_stop(unit: NodeUnit | None) -> tuple[int, int]:
    tile = TileModel(1024, message_unit=unit)
    program = assemble("li a1, 9\nmsg.put a1\nbad: msg.fault a1\nebreak")
    tile.load(program.words())
    tile.run(100)
    return tile.cause, tile.pc - program.symbols["bad"]


def test_models_trap_msg_fault_with_assertion() -> None:
    network = NocModel(num_tiles=2)
    assert _fault_program_stop(NodeUnit(network, 0)) == (Cause.ASSERTION, 0)
    # Without a message unit every custom-0 word is illegal (at the first one, msg.put).
    assert _fault_program_stop(None) == (Cause.ILLEGAL_INSN, -4)
    unit = NodeUnit(network, 1)
    assert unit.execute(MessageOp.FAULT.funct3, 1, 0, 0).cause == Cause.ILLEGAL_INSN  # funct7 != 0
