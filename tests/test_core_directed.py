"""Directed tests of the tile core (through `Tile`) in Amaranth's simulator.

Every program's end state is checked twice: against the values the test states, and against the golden model
(`tessera.sim.model.TileModel`) run on the same words.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tessera.firmware.isa import MASK32, Cause, Csr, Opcode, TileState, encode_i, encode_r, encode_s, encode_b
from tessera.hw.tile import Tile
from tessera.sim.amaranth_harness import TileBench, TileDriver, TileOutcome, run_program, simulate
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

NOP = addi(0, 0, 0)


def program(*parts: int | Sequence[int]) -> list[int]:
    """Flatten instruction words and lists of words (e.g. from `li`) into one program."""
    words: list[int] = []
    for part in parts:
        words.extend([part] if isinstance(part, int) else part)
    return words


def model_run(words: Sequence[int], *, mem_bytes: int = 1024, tile_id: int = 0, unit=None) -> TileModel:
    model = TileModel(mem_bytes, tile_id, unit, has_instret=False)
    model.load(words)
    model.run(10_000)
    return model


def run(words: Sequence[int], *, mem_bytes: int = 1024, tile_id: int = 0, compare: bool = True, **kwargs) -> TileOutcome:
    """Run on the gateware; unless told otherwise, check the outcome against the golden model."""
    outcome = run_program(words, mem_bytes=mem_bytes, tile_id=tile_id, **kwargs)
    if compare:
        model = model_run(words, mem_bytes=mem_bytes, tile_id=tile_id)
        assert (outcome.state, outcome.cause, outcome.pc) == (model.state, model.cause, model.pc)
        assert list(outcome.registers) == model.regs
        assert list(outcome.memory) == model.words()
    return outcome


def s32(value: int) -> int:
    return value & MASK32


# -- ALU --------------------------------------------------------------------------------------------------

EDGE_VALUES = [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1234_5678]

ALU_REFERENCE = {
    "add": lambda a, b: s32(a + b),
    "sub": lambda a, b: s32(a - b),
    "sll": lambda a, b: s32(a << (b & 31)),
    "slt": lambda a, b: int((a ^ 0x8000_0000) < (b ^ 0x8000_0000)),
    "sltu": lambda a, b: int(a < b),
    "xor": lambda a, b: a ^ b,
    "srl": lambda a, b: a >> (b & 31),
    "sra": lambda a, b: s32((a - ((a & 0x8000_0000) << 1)) >> (b & 31)),
    "or": lambda a, b: a | b,
    "and": lambda a, b: a & b,
}


@pytest.mark.parametrize("op", sorted(ALU_REFERENCE))
def test_register_alu_edge_values(op):
    pairs = [(a, b) for a in EDGE_VALUES for b in EDGE_VALUES[:5]]
    if op in ("sll", "srl", "sra"):
        pairs = [(a, b) for a in (0x8000_0001, 0x7654_3210) for b in (0, 1, 4, 31, 32, 0xFFFF_FFE3)]
    parts: list[int | list[int]] = []
    for index, (a, b) in enumerate(pairs):
        parts += [li(1, a), li(2, b), alu(op, 3, 1, 2), store("sw", 3, 0, 0x700 + 4 * index)]
    outcome = run(program(*parts, ECALL), mem_bytes=2048)
    assert outcome.cause == Cause.ECALL
    results = outcome.memory[0x700 // 4 : 0x700 // 4 + len(pairs)]
    assert list(results) == [ALU_REFERENCE[op](a, b) for a, b in pairs]


def test_register_alu_same_register_operands_and_destination():
    outcome = run(program(li(5, 21), alu("add", 5, 5, 5), alu("sub", 6, 5, 5), alu("sll", 7, 5, 5), ECALL))
    assert outcome.registers[5:8] == (42, 0, s32(42 << 10))


IMM_CASES = [
    ("addi", 0x7FFF_FFFF, 1, 0x8000_0000),
    ("addi", 5, -2048, s32(5 - 2048)),
    ("addi", 5, 2047, 2052),
    ("slti", s32(-3), -2, 1),
    ("slti", 0, -2048, 0),
    ("sltiu", 5, -1, 1),  # -1 sign-extends to 0xFFFFFFFF
    ("sltiu", 0xFFFF_FFFF, -1, 0),
    ("sltiu", 0, 1, 1),  # seqz
    ("xori", 0x0F0F_0F0F, -1, 0xF0F0_F0F0),  # not
    ("ori", 0x1000_0000, -2048, 0xFFFF_F800),
    ("andi", 0xFFFF_FFFF, 0x7FF, 0x7FF),
    ("andi", 0x1234_5678, -16, 0x1234_5670),
    ("slli", 0x8000_0001, 0, 0x8000_0001),
    ("slli", 0x8000_0001, 31, 0x8000_0000),
    ("srli", 0x8000_0001, 31, 1),
    ("srli", 0x8000_0001, 0, 0x8000_0001),
    ("srai", 0x8000_0000, 31, 0xFFFF_FFFF),
    ("srai", 0x4000_0000, 30, 1),
    ("srai", 0x8000_0010, 4, 0xF800_0001),
]


@pytest.mark.parametrize("op, value, imm, expected", IMM_CASES, ids=[f"{c[0]}-{c[2]}" for c in IMM_CASES])
def test_immediate_alu(op, value, imm, expected):
    outcome = run(program(li(1, value), alu_imm(op, 2, 1, imm), ECALL))
    assert outcome.registers[2] == expected


def test_lui_and_auipc():
    outcome = run(program(NOP, lui(1, 0xFFFFF), lui(2, 0x80000), auipc(3, 0xFFFFF), auipc(4, 1), ECALL))
    assert outcome.registers[1:5] == (0xFFFF_F000, 0x8000_0000, s32(12 - 0x1000), 16 + 0x1000)


def test_writes_to_x0_are_dropped():
    outcome = run(
        program(
            addi(0, 0, 5),
            lui(0, 1),
            auipc(0, 1),
            alu("add", 0, 0, 0),
            alu_imm("slli", 0, 0, 3),
            load("lw", 0, 0, 0),
            jal(0, 8),
            NOP,
            csr("csrrs", 0, Csr.MHARTID),
            addi(1, 0, 0),
            ECALL,
        ),
        tile_id=9,
    )
    assert outcome.registers[0] == 0
    assert outcome.registers[1] == 0
    assert outcome.cause == Cause.ECALL


# -- loads and stores ------------------------------------------------------------------------------------

DATA = 0x100  # byte address of test data
DATA_WORDS = [0x8180_7F01, 0x0000_FFFF]


def with_data(code: list[int]) -> list[int]:
    assert len(code) <= DATA // 4
    return code + [NOP] * (DATA // 4 - len(code)) + DATA_WORDS


LOAD_CASES = [
    ("lb", 0, 0x01),
    ("lb", 1, 0x7F),
    ("lb", 2, s32(-0x80)),
    ("lb", 3, s32(-0x7F)),
    ("lbu", 2, 0x80),
    ("lbu", 3, 0x81),
    ("lh", 0, 0x7F01),
    ("lh", 2, 0xFFFF_8180),
    ("lhu", 2, 0x8180),
    ("lh", 4, 0xFFFF_FFFF),
    ("lhu", 4, 0xFFFF),
    ("lw", 0, 0x8180_7F01),
    ("lw", 4, 0x0000_FFFF),
]


@pytest.mark.parametrize("op, offset, expected", LOAD_CASES, ids=[f"{c[0]}+{c[1]}" for c in LOAD_CASES])
def test_load_widths_and_sign_extension(op, offset, expected):
    # The base register points past the data so that the offset is negative (immediate sign extension).
    outcome = run(with_data(program(li(1, DATA + 64), load(op, 2, 1, offset - 64), ECALL)))
    assert outcome.registers[2] == expected


def test_load_into_its_own_base_register():
    outcome = run(with_data(program(li(1, DATA), load("lw", 1, 1, 4), ECALL)))
    assert outcome.registers[1] == DATA_WORDS[1]


def test_store_widths_and_lanes():
    base = DATA + 8
    outcome = run(
        with_data(
            program(
                li(1, base + 2048),  # a negative store offset reaches the data
                li(2, 0xA1B2_C3D4),
                store("sw", 2, 1, -2048),
                store("sb", 0, 1, -2048 + 1),
                store("sh", 0, 1, -2048 + 6),
                store("sb", 2, 1, -2048 + 4),
                store("sb", 2, 1, -2048 + 7),
                store("sh", 2, 1, -2048 + 8),
                store("sh", 2, 1, -2048 + 14),
                ECALL,
            )
        )
        + [0xFFFF_FFFF, 0x5555_5555, 0x5555_5555, 0x5555_5555]
    )
    assert outcome.memory[base // 4 : base // 4 + 4] == (0xA1B2_00D4, 0xD400_55D4, 0x5555_C3D4, 0xC3D4_5555)


# -- branches and jumps --------------------------------------------------------------------------------------

BRANCH_CASES = [
    ("beq", 5, 5, True),
    ("beq", 5, 6, False),
    ("bne", 0, 0x8000_0000, True),
    ("bne", 7, 7, False),
    ("blt", 0x8000_0000, 0x7FFF_FFFF, True),
    ("blt", 0x7FFF_FFFF, 0x8000_0000, False),
    ("blt", 3, 3, False),
    ("bge", 0xFFFF_FFFF, 0xFFFF_FFFF, True),
    ("bge", 0xFFFF_FFFF, 0, False),
    ("bltu", 0x7FFF_FFFF, 0x8000_0000, True),
    ("bltu", 0xFFFF_FFFF, 0, False),
    ("bgeu", 0xFFFF_FFFF, 0, True),
    ("bgeu", 0, 1, False),
]


@pytest.mark.parametrize("op, a, b, taken", BRANCH_CASES, ids=[f"{c[0]}-{c[3]}-{c[1]:x}-{c[2]:x}" for c in BRANCH_CASES])
def test_branch_conditions(op, a, b, taken):
    outcome = run(program(li(1, a), li(2, b), branch(op, 1, 2, 8), addi(3, 0, 1), addi(4, 0, 1), ECALL))
    assert outcome.registers[3:5] == ((0, 1) if taken else (1, 1))


def test_largest_branch_offsets():
    # Forward: +4092 is the largest aligned offset (+4094 fits the encoding but is misaligned).
    words = [NOP] * 2048
    words[0] = branch("beq", 0, 0, 4092)
    words[1] = addi(1, 0, 1)
    words[1023] = ECALL
    outcome = run(words, mem_bytes=8192)
    assert (outcome.cause, outcome.pc, outcome.registers[1]) == (Cause.ECALL, 4096, 0)
    words[0] = branch("beq", 0, 0, 4094)
    assert_trap(run(words, mem_bytes=8192), Cause.INSN_MISALIGNED, 0)
    # Backward: -4096 from 4100 lands on 4.
    words = [NOP] * 2048
    words[0] = jal(0, 4096)
    words[1] = ECALL
    words[1024] = addi(1, 1, 1)
    words[1025] = branch("bne", 1, 0, -4096)
    outcome = run(words, mem_bytes=8192)
    assert (outcome.cause, outcome.pc, outcome.registers[1]) == (Cause.ECALL, 8, 1)
    # Backward past address 0 wraps to the top of the address space: a fetch fault there.
    assert_trap(run([NOP, branch("bgeu", 0, 0, -4096)]), Cause.FETCH_FAULT, s32(4 - 4096))


def test_jal_links_and_jumps_both_ways():
    outcome = run(program(jal(1, 12), addi(3, 0, 7), ECALL, jal(2, -8), ECALL))
    assert outcome.registers[1:4] == (4, 16, 7)
    assert outcome.pc == 12


def test_jal_largest_offsets_leave_memory():
    # -2^20 from pc 0 wraps to 0xFFF00000; +2^20-4 lands outside 1 KiB: both fetch-fault at the target, and the
    # link register is written because the jump itself completed.
    outcome = run([jal(1, -(1 << 20))])
    assert (outcome.state, outcome.cause, outcome.pc, outcome.registers[1]) == (TileState.TRAPPED, Cause.FETCH_FAULT, 0xFFF0_0000, 4)
    outcome = run([NOP, jal(1, (1 << 20) - 4)])
    assert (outcome.cause, outcome.pc, outcome.registers[1]) == (Cause.FETCH_FAULT, 4 + (1 << 20) - 4, 8)


def test_jalr_clears_bit_zero_and_may_use_its_own_link_register():
    outcome = run(program(li(1, 17), jalr(1, 1, -4), addi(2, 0, 1), ECALL, ECALL))
    assert outcome.pc == 16  # (17 - 4) & ~1 = 12: the first ECALL
    assert outcome.registers[1:3] == (8, 0)
    outcome = run(program(li(5, 0x7FF + 17), jalr(6, 5, -0x7FF), ECALL, addi(7, 0, 3), ECALL))  # li: 2 words
    assert (outcome.pc, outcome.registers[6], outcome.registers[7]) == (24, 12, 3)


# -- faults: cause, pc, and no side effects -----------------------------------------------------------------

def assert_trap(outcome: TileOutcome, cause: Cause, pc: int) -> None:
    assert (outcome.state, outcome.cause, outcome.pc) == (TileState.TRAPPED, cause, pc)


ILLEGAL_WORDS = {
    "all-zero": 0x0000_0000,
    "all-ones": 0xFFFF_FFFF,
    "compressed": 0x0000_0001 | (Opcode.OP_IMM & ~3),
    "load-funct3-3": encode_i(Opcode.LOAD, 1, 3, 0, 0),
    "load-funct3-6": encode_i(Opcode.LOAD, 1, 6, 0, 0),
    "load-funct3-7": encode_i(Opcode.LOAD, 1, 7, 0, 0),
    "store-funct3-3": encode_s(Opcode.STORE, 3, 0, 0, 0),
    "store-funct3-4": encode_s(Opcode.STORE, 4, 0, 0, 0),
    "branch-funct3-2": encode_b(Opcode.BRANCH, 2, 0, 0, 8),
    "branch-funct3-3": encode_b(Opcode.BRANCH, 3, 0, 0, 8),
    "jalr-funct3-1": encode_i(Opcode.JALR, 1, 1, 0, 0),
    "add-funct7-1": encode_r(Opcode.OP, 1, 0, 0, 0, 1),
    "sll-funct7-0x20": encode_r(Opcode.OP, 1, 1, 0, 0, 0x20),
    "mul": encode_r(Opcode.OP, 1, 0, 0, 0, 0x01),
    "slli-funct7-0x20": encode_r(Opcode.OP_IMM, 1, 1, 0, 3, 0x20),
    "srli-funct7-1": encode_r(Opcode.OP_IMM, 1, 5, 0, 3, 0x01),
    "fence-funct3-2": encode_i(Opcode.MISC_MEM, 0, 2, 0, 0),
    "system-funct3-4": encode_i(Opcode.SYSTEM, 1, 4, 0, Csr.CYCLE - 4096),
    "mret": 0x3020_0073,
    "wfi": 0x1050_0073,
    "ecall-rd": ECALL | (1 << 7),
    "csrrw": csr("csrrw", 1, Csr.CYCLE, 0),
    "csrrwi": csr("csrrwi", 1, Csr.CYCLE, 0),
    "csrrs-rs1": csr("csrrs", 1, Csr.CYCLE, 2),
    "csrrci-uimm": csr("csrrci", 1, Csr.MHARTID, 1),
    "csr-unknown": csr("csrrs", 1, 0x300),
    "instret": csr("csrrs", 1, Csr.INSTRET),
    "instreth": csr("csrrs", 1, Csr.INSTRETH),
    "custom0-no-unit": custom0(1, 0, 2, 3),
    "opcode-0x5b": 0x0000_005B,
    "opcode-0x7f": 0x0000_007F,
}


@pytest.mark.parametrize("name", sorted(ILLEGAL_WORDS))
def test_illegal_instructions_trap_without_effects(name):
    outcome = run(program(addi(1, 0, 77), ILLEGAL_WORDS[name], ECALL))
    assert_trap(outcome, Cause.ILLEGAL_INSN, 4)
    assert outcome.registers[1] == 77


def test_misaligned_jump_targets_trap_on_the_jump_without_linking():
    assert_trap(out := run(program(addi(1, 0, 3), jal(2, 6))), Cause.INSN_MISALIGNED, 4)
    assert out.registers[2] == 0
    assert_trap(out := run(program(addi(1, 0, 14), jalr(2, 1, 0))), Cause.INSN_MISALIGNED, 4)  # 14 & ~1 = 14
    assert out.registers[2] == 0
    assert_trap(out := run(program(addi(1, 0, 7), jalr(1, 1, 3))), Cause.INSN_MISALIGNED, 4)  # 10: bit 1 via carry
    assert out.registers[1] == 7
    assert_trap(run(program(branch("beq", 0, 0, 6))), Cause.INSN_MISALIGNED, 0)
    # An untaken branch to a misaligned target is fine.
    assert run(program(branch("bne", 0, 0, 6), ECALL)).cause == Cause.ECALL


LOAD_FAULTS = [
    ("lh", 1, Cause.LOAD_MISALIGNED),
    ("lhu", 3, Cause.LOAD_MISALIGNED),
    ("lw", 2, Cause.LOAD_MISALIGNED),
    ("lw", 1, Cause.LOAD_MISALIGNED),
    ("lw", 1024, Cause.LOAD_FAULT),
    ("lb", 1024 + 3, Cause.LOAD_FAULT),
    ("lw", 0xFFFF_FFFC, Cause.LOAD_FAULT),
    ("lw", 0x8000_0000, Cause.LOAD_FAULT),
    ("lw", 1024 + 2, Cause.LOAD_MISALIGNED),  # both: misaligned wins
]


@pytest.mark.parametrize("op, address, cause", LOAD_FAULTS, ids=[f"{c[0]}-{c[1]:x}" for c in LOAD_FAULTS])
def test_load_faults(op, address, cause):
    outcome = run(program(li(1, address), addi(2, 0, 5), load(op, 2, 1, 0), ECALL))
    assert_trap(outcome, cause, 4 * len(li(1, address)) + 4)
    assert outcome.registers[2] == 5


def test_loads_at_the_last_bytes_succeed():
    outcome = run(program(li(1, 1020), load("lw", 2, 1, 0), load("lbu", 3, 1, 3), ECALL))
    assert outcome.cause == Cause.ECALL


STORE_FAULTS = [
    ("sh", 0x101, Cause.STORE_MISALIGNED),
    ("sw", 0x102, Cause.STORE_MISALIGNED),
    ("sw", 0x103, Cause.STORE_MISALIGNED),
    ("sb", 1024, Cause.STORE_FAULT),
    ("sw", 0xFFFF_FFFC, Cause.STORE_FAULT),
    ("sh", 0x4000_0100, Cause.STORE_FAULT),  # would alias 0x100 if the high bits were ignored
    ("sh", 0x4000_0101, Cause.STORE_MISALIGNED),
]


@pytest.mark.parametrize("op, address, cause", STORE_FAULTS, ids=[f"{c[0]}-{c[1]:x}" for c in STORE_FAULTS])
def test_store_faults_leave_memory_alone(op, address, cause):
    code = program(li(1, address), li(2, 0x1234_5678), store(op, 2, 1, 0), ECALL)
    outcome = run(code)
    assert_trap(outcome, cause, 4 * (len(code) - 2))
    assert outcome.memory[len(code) :] == (0,) * (256 - len(code))


def test_running_off_the_end_is_a_fetch_fault():
    outcome = run([NOP] * 256)
    assert_trap(outcome, Cause.FETCH_FAULT, 1024)
    outcome = run(program(li(1, 0x0040_0000), jalr(0, 1, 0)))
    assert_trap(outcome, Cause.FETCH_FAULT, 0x0040_0000)


# -- ECALL / EBREAK / FENCE / CSR -----------------------------------------------------------------------------

def test_ebreak_and_ecall_stop_and_resume():
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(program(addi(1, 0, 1), EBREAK, addi(1, 1, 1), ECALL, addi(1, 1, 1), ECALL))
        await driver.pulse(tile.run)
        await driver.wait_stopped(200)
        assert driver.status() == (TileState.TRAPPED, Cause.BREAKPOINT, 8)
        await driver.pulse(tile.run)
        await driver.wait_stopped(200)
        assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 16)
        assert driver.registers()[1] == 2
        await driver.pulse(tile.run)
        await driver.wait_stopped(200)
        assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 24)
        assert driver.registers()[1] == 3
        assert ctx.get(bench.retired) == 6

    simulate(bench, testbench)


def test_fence_is_a_no_op():
    outcome = run(program(addi(1, 0, 1), FENCE, FENCE_I, addi(1, 1, 1), ECALL))
    assert outcome.registers[1] == 2


def test_csr_reads():
    code = program(
        csr("csrrs", 1, Csr.CYCLE),
        csr("csrrc", 2, Csr.CYCLEH),
        csr("csrrsi", 3, Csr.TIME),
        csr("csrrci", 4, Csr.TIMEH),
        csr("csrrs", 5, Csr.MHARTID),
        csr("csrrs", 6, Csr.CYCLE),
        ECALL,
    )
    # The run starts 256 cycles before the low half wraps, so cycleh and timeh read 1.
    outcome = run_program(code, tile_id=0x2A, cycle_start=(2 << 32) - 256)
    begin, end = outcome.run_cycle, outcome.run_cycle + outcome.cycles
    regs = outcome.registers
    assert begin < regs[1] + (1 << 32) * regs[2] < regs[3] + (1 << 32) * regs[4] < end
    assert regs[2] == 1 and regs[4] == 1
    assert regs[5] == 0x2A
    assert regs[6] > regs[1]


# -- control pulses and the debug port ---------------------------------------------------------------------

LOOP = program(addi(1, 1, 1), jal(0, -4))


def test_halt_run_and_reset_pc():
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        assert driver.status() == (TileState.HALTED, 0, 0)
        await driver.write_words(LOOP)
        await driver.pulse(tile.run)
        await ctx.tick().repeat(50)
        assert driver.status()[0] == TileState.RUNNING
        await driver.pulse(tile.halt)
        state, cause, pc = driver.status()
        assert state == TileState.HALTED and pc in (0, 4)
        count = driver.registers()[1]
        await ctx.tick().repeat(20)
        assert driver.registers()[1] == count and driver.status()[2] == pc
        await driver.pulse(tile.run)
        await ctx.tick().repeat(30)
        assert driver.registers()[1] > count
        await driver.pulse(tile.reset_pc)
        assert driver.status() == (TileState.HALTED, 0, 0)
        count = driver.registers()[1]
        await driver.pulse(tile.run)
        await ctx.tick().repeat(12)
        assert driver.registers()[1] == count + 2  # registers survive reset_pc; the loop starts again

    simulate(bench, testbench)


@pytest.mark.parametrize("delay", range(5))
def test_halt_at_every_step_of_an_instruction_keeps_the_architectural_state_exact(delay):
    """Halt lands on each cycle of a store/add sequence; stopping and running on must still give the answer."""
    code = program(li(1, 0x100), addi(2, 0, 1), alu("add", 2, 2, 2), store("sw", 2, 1, 0), alu("add", 2, 2, 2), store("sw", 2, 1, 4), ECALL)
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(code)
        halts = 0
        for _ in range(50):  # each slice is long enough for one instruction, so the program advances
            await driver.pulse(tile.run)
            await ctx.tick().repeat(4 + delay)
            if driver.status()[0] != TileState.RUNNING:
                break
            await driver.pulse(tile.halt)
            halts += 1
            assert driver.status()[0] == TileState.HALTED
        assert halts >= 3
        assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 4 * len(code))
        assert await driver.read_words(0x40, 2) == [2, 4]
        assert driver.registers()[2] == 4

    simulate(bench, testbench)


def test_fault_in_traps_at_the_current_pc_and_run_resumes():
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(LOOP)
        await driver.pulse(tile.run)
        await ctx.tick().repeat(40)
        ctx.set(tile.fault_in_cause, Cause.WATCHDOG)
        await driver.pulse(tile.fault_in_valid)
        state, cause, pc = driver.status()
        assert (state, cause) == (TileState.TRAPPED, Cause.WATCHDOG) and pc in (0, 4)
        count = driver.registers()[1]
        await driver.pulse(tile.run)
        await ctx.tick().repeat(20)
        assert driver.registers()[1] > count
        assert driver.status()[0] == TileState.RUNNING

    simulate(bench, testbench)


def test_debug_port_is_refused_while_running():
    tile = Tile(mem_bytes=1024)
    bench = TileBench(tile)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(LOOP + [0x1111_1111])
        await driver.pulse(tile.run)
        await driver.write_words([0x2222_2222], base_word=2)
        await driver.write_words([0xFFFF_FFFF], base_word=0)  # would break the loop if it landed
        assert driver.status()[0] == TileState.RUNNING
        await driver.pulse(tile.halt)
        assert await driver.read_words(0, 3) == LOOP + [0x1111_1111]
        await driver.write_words([0x3333_3333], base_word=2)
        assert await driver.read_words(2, 1) == [0x3333_3333]

    simulate(bench, testbench)


# -- the message port ------------------------------------------------------------------------------------------

class FakeUnit:
    """Answers after `delay` asks with rs1 * 2 + rs2 + funct3 + funct7, or faults when funct3 is 7."""

    def __init__(self, delay: int):
        self.delay = delay
        self.asks = 0
        self.calls: list[tuple[int, int, int, int]] = []

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None:
        self.calls.append((funct3, funct7, rs1, rs2))
        self.asks += 1
        if self.asks <= self.delay:
            return None
        self.asks = 0
        if funct3 == 7:
            return MessageReply(fault=True, cause=Cause.SEND_DENIED)
        return MessageReply(result=s32(rs1 * 2 + rs2 + funct3 + funct7))


@pytest.mark.parametrize("delay", [0, 3])
def test_message_results_and_faults(delay):
    code = program(
        li(1, 0x8000_0000),
        addi(2, 0, 5),
        addi(4, 0, 9),
        custom0(3, 2, 1, 2, funct7=0x41),
        custom0(0, 1, 2, 2),
        custom0(4, 7, 2, 1),
        ECALL,
    )
    unit = FakeUnit(delay)
    outcome = run_program(code, message_unit=unit)
    assert_trap(outcome, Cause.SEND_DENIED, 20)
    assert outcome.registers[3] == s32(0x1_0000_0000 + 5 + 2 + 0x41)
    assert outcome.registers[0] == 0
    assert outcome.registers[4] == 9  # the faulting message instruction did not write rd
    assert set(unit.calls) == {(2, 0x41, 0x8000_0000, 5), (1, 0, 5, 5), (7, 0, 5, 0x8000_0000)}
    model = TileModel(1024, 0, FakeUnit(delay), has_instret=False)
    model.load(code)
    model.run(1000)
    assert list(outcome.registers) == model.regs and (model.state, model.cause, model.pc) == (outcome.state, outcome.cause, outcome.pc)


def test_message_wait_is_sleeping_and_halt_abandons_it():
    tile = Tile(mem_bytes=1024, has_message_unit=True)
    bench = TileBench(tile)
    code = program(addi(1, 0, 6), custom0(2, 3, 1, 1), ECALL)

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        port = tile.message
        await driver.write_words(code)
        await driver.pulse(tile.run)
        await ctx.tick().until(port.valid)
        assert driver.status() == (TileState.SLEEPING, 0, 4)
        assert (ctx.get(port.funct3), ctx.get(port.funct7), ctx.get(port.rs1), ctx.get(port.rs2)) == (3, 0, 6, 6)
        await ctx.tick().repeat(10)
        assert driver.status()[0] == TileState.SLEEPING and ctx.get(port.valid)
        await driver.pulse(tile.halt)
        assert driver.status() == (TileState.HALTED, 0, 4) and not ctx.get(port.valid)
        await driver.pulse(tile.run)
        await ctx.tick().until(port.valid)
        ctx.set(port.result, 0xCAFE)
        await driver.pulse(port.ready)
        await driver.wait_stopped(50)
        assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 12)
        assert driver.registers()[2] == 0xCAFE

    simulate(bench, testbench)
