"""Directed tests of the golden tile model: every instruction class, every fault, CSRs, messages and control."""

from __future__ import annotations

import pytest

from tessera.firmware.isa import MASK32, Cause, Csr, TileState
from tessera.sim.encode import (
    EBREAK,
    ECALL,
    FENCE,
    FENCE_I,
    addi,
    alu,
    alu_imm,
    auipc,
    branch,
    csr,
    custom0,
    jal,
    jalr,
    li,
    load,
    lui,
    store,
)
from tessera.sim.model import MessageReply, TileModel

EDGE_VALUES = [
    0,
    1,
    2,
    31,
    32,
    0x7FF,
    0x800,
    0x7FFF_FFFF,
    0x8000_0000,
    0x8000_0001,
    0xFFFF_FFFF,
    0xFFFF_F800,
    0x1234_5678,
]


def signed(value: int) -> int:
    return value - (1 << 32) if value & 0x8000_0000 else value


def program(*parts: int | list[int]) -> list[int]:
    """Flatten instruction words and lists of words (such as li's output)."""
    words: list[int] = []
    for part in parts:
        words.extend(part if isinstance(part, list) else [part])
    return words


def run(words: list[int], mem_bytes: int = 1024, max_steps: int = 10_000, **kwargs: object) -> TileModel:
    tile = TileModel(mem_bytes, **kwargs)  # type: ignore[arg-type]
    tile.load(words)
    tile.run(max_steps)
    return tile


def expect_trap(tile: TileModel, cause: int, pc: int) -> None:
    assert (tile.state, tile.cause, tile.pc) == (TileState.TRAPPED, cause, pc)


# Python statements of the RV32I ALU semantics, written independently of the model's functions.
REG_OPS = {
    "add": lambda a, b: (a + b) & MASK32,
    "sub": lambda a, b: (a - b) & MASK32,
    "sll": lambda a, b: (a << (b % 32)) & MASK32,
    "slt": lambda a, b: 1 if signed(a) < signed(b) else 0,
    "sltu": lambda a, b: 1 if a < b else 0,
    "xor": lambda a, b: a ^ b,
    "srl": lambda a, b: a >> (b % 32),
    "sra": lambda a, b: (signed(a) >> (b % 32)) & MASK32,
    "or": lambda a, b: a | b,
    "and": lambda a, b: a & b,
}


@pytest.mark.parametrize("op", sorted(REG_OPS))
def test_register_alu(op: str) -> None:
    for a in EDGE_VALUES:
        for b in EDGE_VALUES:
            tile = run(program(li(5, a), li(6, b), alu(op, 7, 5, 6), ECALL))
            assert tile.regs[7] == REG_OPS[op](a, b), (op, hex(a), hex(b))


@pytest.mark.parametrize("op", ["addi", "slti", "sltiu", "xori", "ori", "andi"])
def test_immediate_alu(op: str) -> None:
    reference = REG_OPS[{"sltiu": "sltu"}.get(op, op[:-1])]
    for a in EDGE_VALUES:
        for imm in (0, 1, -1, 2047, -2048, 0x555, -0x556):
            tile = run(program(li(5, a), alu_imm(op, 7, 5, imm), ECALL))
            assert tile.regs[7] == reference(a, imm & MASK32), (op, hex(a), imm)


@pytest.mark.parametrize("op", ["slli", "srli", "srai"])
def test_shift_immediate(op: str) -> None:
    reference = REG_OPS[op[:-1]]
    for a in EDGE_VALUES:
        for shamt in (0, 1, 7, 16, 31):
            tile = run(program(li(5, a), alu_imm(op, 7, 5, shamt), ECALL))
            assert tile.regs[7] == reference(a, shamt)


def test_lui_auipc_and_x0_stays_zero() -> None:
    tile = run(
        program(addi(0, 0, 5), lui(1, 0xABCDE), addi(0, 0, 0), auipc(2, 0x12345), auipc(3, 0xFFFFF), lui(0, 1), ECALL)
    )
    assert tile.regs[0] == 0
    assert tile.regs[1] == 0xABCDE000
    assert tile.regs[2] == 0x12345000 + 12
    assert tile.regs[3] == (0xFFFFF000 + 16) & MASK32


def test_jal_links_and_jumps() -> None:
    tile = run(program(jal(1, 8), addi(5, 0, 1), addi(6, 0, 2), ECALL))
    assert (tile.regs[1], tile.regs[5], tile.regs[6]) == (4, 0, 2)


def test_jalr_clears_bit_zero_and_links() -> None:
    # x5 = 13: target (13 + 0) & ~1 = 12, aligned.
    tile = run(program(addi(5, 0, 13), jalr(1, 5, 0), addi(6, 0, 1), addi(7, 0, 1), ECALL))
    assert (tile.regs[1], tile.regs[6], tile.regs[7]) == (8, 0, 1)


def test_jalr_with_rd_equal_rs1_uses_the_old_value() -> None:
    tile = run(program(addi(5, 0, 12), jalr(5, 5, 0), addi(6, 0, 1), ECALL))
    assert (tile.regs[5], tile.regs[6], tile.pc) == (8, 0, 16)


BRANCH_CASES = {
    "beq": lambda a, b: a == b,
    "bne": lambda a, b: a != b,
    "blt": lambda a, b: signed(a) < signed(b),
    "bge": lambda a, b: signed(a) >= signed(b),
    "bltu": lambda a, b: a < b,
    "bgeu": lambda a, b: a >= b,
}


@pytest.mark.parametrize("op", sorted(BRANCH_CASES))
def test_branches(op: str) -> None:
    for a in (0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF):
        for b in (0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF):
            # Taken: skips the `addi x7, x0, 1`.
            tile = run(program(li(5, a), li(6, b), addi(7, 0, 0), branch(op, 5, 6, 8), addi(7, 0, 1), ECALL))
            assert tile.regs[7] == (0 if BRANCH_CASES[op](a, b) else 1), (op, hex(a), hex(b))


def test_backward_branch_loop() -> None:
    tile = run(program(addi(5, 0, 10), addi(6, 6, 3), addi(5, 5, -1), branch("bne", 5, 0, -8), ECALL))
    assert tile.regs[6] == 30 and tile.instret == 1 + 20 + 10 + 1


def test_loads_all_widths_and_sign_extension() -> None:
    words = program(
        addi(10, 0, 0x200),
        load("lw", 1, 10, 0),
        load("lh", 2, 10, 2),
        load("lhu", 3, 10, 2),
        load("lb", 4, 10, 3),
        load("lbu", 5, 10, 3),
        load("lb", 6, 10, 1),
        load("lh", 7, 10, 4),
        load("lw", 8, 10, -4),
        ECALL,
    )
    tile = TileModel(1024)
    tile.load(words)
    tile.load([0x1234_5678], base=0x1FC)
    tile.load([0x8A7F_0102, 0x0000_7FFF], base=0x200)
    tile.run(100)
    assert tile.regs[1:9] == [0x8A7F_0102, 0xFFFF_8A7F, 0x8A7F, 0xFFFF_FF8A, 0x8A, 0x01, 0x7FFF, 0x1234_5678]


def test_stores_all_widths() -> None:
    words = program(
        li(1, 0xDEAD_BEEF),
        addi(10, 0, 0x200),
        store("sw", 1, 10, 0),
        store("sh", 1, 10, 4),
        store("sh", 1, 10, 10),
        store("sb", 1, 10, 13),
        store("sb", 1, 10, -1),
        ECALL,
    )
    tile = run(words)
    assert tile.mem[0x1FF:0x210] == bytes.fromhex("efefbeaddeefbe00000000efbe00ef0000")


def test_fence_and_fence_i_are_no_ops() -> None:
    tile = run(program(addi(1, 0, 1), FENCE, FENCE_I, 0x8330000F, addi(2, 0, 2), ECALL))
    assert (tile.regs[1], tile.regs[2], tile.cause) == (1, 2, Cause.ECALL)


def test_ecall_and_ebreak_are_resumable() -> None:
    tile = TileModel(1024)
    tile.load(program(addi(10, 0, 7), EBREAK, addi(10, 10, 1), ECALL, addi(10, 10, 1), ECALL))
    assert tile.run(100) == (TileState.TRAPPED, Cause.BREAKPOINT) and tile.pc == 8 and tile.regs[10] == 7
    assert tile.run(100) == (TileState.TRAPPED, Cause.ECALL) and tile.pc == 16 and tile.regs[10] == 8
    assert tile.run(100) == (TileState.TRAPPED, Cause.ECALL) and tile.pc == 24 and tile.regs[10] == 9
    assert tile.instret == 6


# ------------------------------------------------------------------------------------------------- faults


def test_misaligned_jal_faults_on_the_jump_without_linking() -> None:
    tile = run(program(addi(1, 0, 0x55), jal(1, 6), ECALL))
    expect_trap(tile, Cause.INSN_MISALIGNED, 4)
    assert tile.regs[1] == 0x55 and tile.instret == 1


def test_misaligned_jalr_faults_on_the_jump_without_linking() -> None:
    tile = run(program(addi(5, 0, 0x102), addi(1, 0, 0x55), jalr(1, 5, 0), ECALL))
    expect_trap(tile, Cause.INSN_MISALIGNED, 8)
    assert tile.regs[1] == 0x55


def test_misaligned_branch_faults_only_when_taken() -> None:
    not_taken = run(program(addi(5, 0, 1), branch("beq", 5, 0, 6), ECALL))
    expect_trap(not_taken, Cause.ECALL, 12)
    taken = run(program(addi(5, 0, 1), branch("bne", 5, 0, 6), ECALL))
    expect_trap(taken, Cause.INSN_MISALIGNED, 4)


def test_fetch_fault_at_jump_target_after_the_jump_retired() -> None:
    tile = run(program(li(5, 1024), jalr(1, 5, 0)))
    expect_trap(tile, Cause.FETCH_FAULT, 1024)
    assert tile.regs[1] == 8  # the jump itself completed


def test_fetch_fault_far_outside_and_falling_off_the_end() -> None:
    tile = run(program(li(5, 0xFFFF_FFFC), jalr(0, 5, 0)))
    expect_trap(tile, Cause.FETCH_FAULT, 0xFFFF_FFFC)
    tile = TileModel(1024)
    tile.load([addi(1, 1, 1)] * 256)  # fills memory: the 257th fetch is at 1024
    tile.run(1000)
    expect_trap(tile, Cause.FETCH_FAULT, 1024)
    assert tile.regs[1] == 256


@pytest.mark.parametrize(("op", "offset"), [("lh", 1), ("lhu", 3), ("lw", 1), ("lw", 2), ("lw", 3)])
def test_misaligned_loads(op: str, offset: int) -> None:
    tile = run(program(addi(10, 0, 0x200), addi(1, 0, 0x55), load(op, 1, 10, offset), ECALL))
    expect_trap(tile, Cause.LOAD_MISALIGNED, 8)
    assert tile.regs[1] == 0x55


@pytest.mark.parametrize(("op", "offset"), [("sh", 1), ("sw", 1), ("sw", 2), ("sw", 3)])
def test_misaligned_stores_leave_memory_alone(op: str, offset: int) -> None:
    tile = run(program(li(1, MASK32), addi(10, 0, 0x200), store(op, 1, 10, offset), ECALL))
    expect_trap(tile, Cause.STORE_MISALIGNED, 8)
    assert not any(tile.mem[0x200:0x208])


@pytest.mark.parametrize("address", [1024, 1028, 0x8000_0000, 0xFFFF_FFFC])
@pytest.mark.parametrize("op", ["lb", "lbu", "lh", "lhu", "lw"])
def test_load_outside_memory(op: str, address: int) -> None:
    tile = run(program(li(10, address), addi(1, 0, 0x55), load(op, 1, 10, 0), ECALL))
    expect_trap(tile, Cause.LOAD_FAULT, tile.pc)
    assert tile.regs[1] == 0x55 and tile.pc == 4 * (len(li(10, address)) + 1)


@pytest.mark.parametrize("address", [1024, 0x10000, 0xFFFF_FFFC])
@pytest.mark.parametrize("op", ["sb", "sh", "sw"])
def test_store_outside_memory(op: str, address: int) -> None:
    words = program(li(10, address), store(op, 10, 10, 0), ECALL)
    tile = run(words)
    expect_trap(tile, Cause.STORE_FAULT, 4 * (len(words) - 2))
    assert bytes(tile.mem[4 * len(words) :]) == bytes(1024 - 4 * len(words))


def test_address_wraps_below_zero_is_outside() -> None:
    tile = run(program(load("lw", 1, 0, -4), ECALL))
    expect_trap(tile, Cause.LOAD_FAULT, 0)


def test_misaligned_wins_over_outside() -> None:
    tile = run(program(li(10, 0x1001), load("lh", 1, 10, 0), ECALL))
    expect_trap(tile, Cause.LOAD_MISALIGNED, 4 * len(li(10, 0x1001)))
    tile = run(program(li(10, 0x1002), store("sw", 1, 10, 0), ECALL))
    expect_trap(tile, Cause.STORE_MISALIGNED, 4 * len(li(10, 0x1002)))


ILLEGAL_WORDS = {
    "all zeros": 0x0000_0000,
    "all ones": 0xFFFF_FFFF,
    "compressed quadrant": 0x0000_0001,
    "load funct3 3 (ld)": 0x0000_3083,
    "load funct3 6 (lwu)": 0x0000_6083,
    "load funct3 7": 0x0000_7083,
    "store funct3 3 (sd)": 0x0010_3023,
    "store funct3 4": 0x0010_4023,
    "branch funct3 2": 0x0000_2063,
    "branch funct3 3": 0x0000_3063,
    "jalr funct3 1": 0x0000_10E7,
    "slli funct7 0x20": 0x4010_1093,
    "slli shamt bit 5 (rv64)": 0x0210_1093,
    "srli funct7 0x01": 0x0210_5093,
    "add funct7 0x01 (mul)": alu("add", 1, 2, 3) | (1 << 25),
    "xor funct7 0x20": alu("xor", 1, 2, 3) | (0x20 << 25),
    "sll funct7 0x20": alu("sll", 1, 2, 3) | (0x20 << 25),
    "misc-mem funct3 2": 0x0000_200F,
    "uret/mret": 0x3020_0073,
    "wfi": 0x1050_0073,
    "sfence.vma": 0x1200_0073,
    "ecall with rd": 0x0000_00F3,
    "system funct3 4": 0x0000_4073,
    "csrrw cycle": csr("csrrw", 1, Csr.CYCLE, 0),
    "csrrw mhartid x0": csr("csrrw", 0, Csr.MHARTID, 0),
    "csrrwi mhartid": csr("csrrwi", 1, Csr.MHARTID, 0),
    "csrrs with rs1": csr("csrrs", 1, Csr.MHARTID, 5),
    "csrrc with rs1": csr("csrrc", 1, Csr.CYCLE, 5),
    "csrrsi with uimm": csr("csrrsi", 1, Csr.MHARTID, 1),
    "csrrci with uimm": csr("csrrci", 1, Csr.MHARTID, 31),
    "unknown csr mstatus": csr("csrrs", 1, 0x300, 0),
    "unknown csr mcycle": csr("csrrs", 1, 0xB00, 0),
    "custom-0 without a message unit": custom0(1, 0, 2, 3),
    "custom-1": 0x0000_002B,
    "amo": 0x0000_202F,
    "op-32 (rv64)": 0x0000_003B,
    "op-imm-32 (rv64)": 0x0000_001B,
    "floating load": 0x0000_2007,
}


@pytest.mark.parametrize("word", ILLEGAL_WORDS.values(), ids=ILLEGAL_WORDS.keys())
def test_illegal_instruction_has_no_side_effects(word: int) -> None:
    tile = run(program(addi(1, 0, 0x55), word, ECALL))
    expect_trap(tile, Cause.ILLEGAL_INSN, 4)
    assert tile.regs[1] == 0x55 and tile.instret == 1


def test_instret_csr_is_illegal_without_instret() -> None:
    for number in (Csr.INSTRET, Csr.INSTRETH):
        tile = run(program(csr("csrrs", 1, number), ECALL))  # the default, as the core
        expect_trap(tile, Cause.ILLEGAL_INSN, 0)
    tile = run(program(csr("csrrs", 1, Csr.MHARTID), ECALL), tile_id=3)
    assert tile.regs[1] == 3


def test_a_trapped_fault_repeats_when_run_again() -> None:
    tile = run(program(0, ECALL))
    expect_trap(tile, Cause.ILLEGAL_INSN, 0)
    assert tile.run(10) == (TileState.TRAPPED, Cause.ILLEGAL_INSN) and tile.pc == 0


# --------------------------------------------------------------------------------------------------- CSRs


def test_mhartid_and_all_read_forms() -> None:
    words = program(
        csr("csrrs", 1, Csr.MHARTID),
        csr("csrrc", 2, Csr.MHARTID),
        csr("csrrsi", 3, Csr.MHARTID),
        csr("csrrci", 4, Csr.MHARTID),
        csr("csrrs", 0, Csr.MHARTID),
        ECALL,
    )
    tile = run(words, tile_id=0x2A)
    assert tile.regs[1:5] == [0x2A] * 4


def test_instret_reads_the_count_before_the_reading_instruction() -> None:
    words = program(addi(1, 0, 1), addi(1, 0, 1), csr("csrrs", 5, Csr.INSTRET), csr("csrrs", 6, Csr.INSTRETH), ECALL)
    tile = run(words, has_instret=True)
    assert (tile.regs[5], tile.regs[6], tile.instret) == (2, 0, 5)
    tile = TileModel(1024, has_instret=True)
    tile.load(program(csr("csrrs", 5, Csr.INSTRET), csr("csrrs", 6, Csr.INSTRETH), ECALL))
    tile.instret = 0x1_FFFF_FFFE
    tile.run(10)
    assert (tile.regs[5], tile.regs[6]) == (0xFFFF_FFFE, 1)


def test_cycle_and_time_read_the_chip_counter() -> None:
    counter = 0x0000_0012_8765_4321
    words = program(
        csr("csrrs", 1, Csr.CYCLE),
        csr("csrrs", 2, Csr.CYCLEH),
        csr("csrrs", 3, Csr.TIME),
        csr("csrrs", 4, Csr.TIMEH),
        ECALL,
    )
    tile = run(words, cycle_source=lambda: counter)
    assert tile.regs[1:5] == [0x8765_4321, 0x12, 0x8765_4321, 0x12]


def test_default_cycle_counter_advances() -> None:
    tile = run(program(csr("csrrs", 1, Csr.CYCLE), addi(0, 0, 0), csr("csrrs", 2, Csr.CYCLE), ECALL))
    assert tile.regs[2] > tile.regs[1]


# ----------------------------------------------------------------------------------------------- messages


class ScriptedUnit:
    """A message unit that answers from a script; None entries mean 'not ready yet'."""

    def __init__(self, replies: list[MessageReply | None]) -> None:
        self.replies = replies
        self.calls: list[tuple[int, int, int, int]] = []

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None:
        self.calls.append((funct3, funct7, rs1, rs2))
        return self.replies.pop(0)


def test_message_result_goes_to_rd_with_operands_passed() -> None:
    unit = ScriptedUnit([MessageReply(result=0xCAFE_F00D), MessageReply(result=5)])
    tile = run(
        program(addi(2, 0, 11), addi(3, 0, -1), custom0(4, 5, 2, 3, 0x41), custom0(0, 1, 3, 2), ECALL),
        message_unit=unit,
    )
    assert unit.calls == [(5, 0x41, 11, MASK32), (1, 0, MASK32, 11)]
    assert tile.regs[4] == 0xCAFE_F00D and tile.regs[0] == 0
    expect_trap(tile, Cause.ECALL, 20)


def test_message_sleeps_until_ready() -> None:
    unit = ScriptedUnit([None, None, MessageReply(result=9)])
    tile = TileModel(1024, message_unit=unit)
    tile.load(program(addi(2, 0, 1), custom0(4, 0, 2, 2), ECALL))
    tile.step()
    tile.step()
    assert (tile.state, tile.pc, tile.instret) == (TileState.SLEEPING, 4, 1)
    tile.step()
    assert (tile.state, tile.pc) == (TileState.SLEEPING, 4)
    tile.step()
    assert (tile.state, tile.pc, tile.regs[4], tile.instret) == (TileState.RUNNING, 8, 9, 2)
    assert len(unit.calls) == 3 and len(set(unit.calls)) == 1


def test_message_fault_traps_with_the_units_cause() -> None:
    unit = ScriptedUnit([None, MessageReply(result=1, fault=True, cause=Cause.SEND_DENIED)])
    tile = run(program(addi(4, 0, 0x55), custom0(4, 2, 0, 0), ECALL), message_unit=unit)
    expect_trap(tile, Cause.SEND_DENIED, 4)
    assert tile.regs[4] == 0x55


def test_run_budget_runs_out_while_sleeping_and_halt_abandons() -> None:
    unit = ScriptedUnit([None] * 10)
    tile = TileModel(1024, message_unit=unit)
    tile.load(program(custom0(1, 0, 0, 0), ECALL))
    assert tile.run(5) == (TileState.SLEEPING, 0)
    tile.halt()
    assert (tile.state, tile.pc) == (TileState.HALTED, 0)


def test_message_reply_is_checked() -> None:
    with pytest.raises(ValueError, match="5-bit cause"):
        MessageReply(fault=True, cause=32)
    with pytest.raises(ValueError, match="32 bits"):
        MessageReply(result=1 << 32)


# ------------------------------------------------------------------------------------------------ control


def test_reset_keeps_registers_and_memory() -> None:
    tile = run(program(addi(1, 0, 9), store("sw", 1, 0, 0x100), ECALL))
    tile.reset()
    assert (tile.pc, tile.state, tile.cause, tile.instret) == (0, TileState.HALTED, 0, 0)
    assert tile.regs[1] == 9 and tile.read_word(0x100) == 9


def test_halt_and_fault_in() -> None:
    tile = TileModel(1024)
    tile.load(program(jal(0, 0)))
    assert tile.run(50) == (TileState.RUNNING, 0)
    tile.halt()
    assert tile.state == TileState.HALTED
    tile.run(3)
    tile.fault_in(Cause.WATCHDOG)
    assert (tile.state, tile.cause, tile.pc) == (TileState.TRAPPED, Cause.WATCHDOG, 0)


def test_bad_parameters_and_loads_are_rejected() -> None:
    for size in (512, 1000, 3072):
        with pytest.raises(ValueError, match="power of two"):
            TileModel(size)
    tile = TileModel(1024)
    with pytest.raises(ValueError, match="multiple of 4"):
        tile.load([0], base=2)
    with pytest.raises(ValueError, match="past the end"):
        tile.load([0] * 257)
    with pytest.raises(ValueError, match="32 bits"):
        tile.load([1 << 32])
    with pytest.raises(ValueError, match="does not fit"):
        tile.load_bytes(bytes(1025))


def test_larger_memory() -> None:
    tile = run(
        program(li(10, 0x3FFC), li(1, 0x77), store("sw", 1, 10, 0), load("lw", 2, 10, 0), ECALL), mem_bytes=16384
    )
    assert tile.regs[2] == 0x77
    tile = run(program(li(10, 0x4000), load("lw", 2, 10, 0), ECALL), mem_bytes=16384)
    assert tile.cause == Cause.LOAD_FAULT


def test_speed_is_reasonable() -> None:
    """A tight loop of 3 instructions x 20 000 iterations finishes in a second or two of pure Python."""
    import time

    tile = TileModel(1024)
    tile.load(program(li(5, 20_000), addi(6, 6, 1), addi(5, 5, -1), branch("bne", 5, 0, -8), ECALL))
    start = time.perf_counter()
    tile.run(100_000)
    elapsed = time.perf_counter() - start
    assert tile.cause == Cause.ECALL and tile.regs[6] == 20_000
    assert elapsed < 5, f"60k instructions took {elapsed:.2f} s"


def test_stores_into_code_are_fetched() -> None:
    """Decoding is cached by instruction word, not by address, so code rewritten at run time executes anew."""
    routine = 0x80
    words = program(
        jal(1, routine),  # first call: x7 <- 1
        li(5, addi(7, 0, 42)),
        store("sw", 5, 0, routine),
        jal(1, 0),  # placeholder, patched below into the second call
        ECALL,
    )
    second_call = 4 * (len(words) - 2)
    words[-2] = jal(1, routine - second_call)
    tile = TileModel(1024)
    tile.load(words)
    tile.load([addi(7, 0, 1), addi(8, 7, 0), jalr(0, 1, 0)], base=routine)
    assert tile.run(100) == (TileState.TRAPPED, Cause.ECALL)
    assert (tile.regs[7], tile.regs[8]) == (42, 42)
