"""The random program generator: its programs end, are deterministic, and reach every fault they aim at."""

from __future__ import annotations

import collections

import pytest

from tessera.firmware.isa import Cause, TileState
from tessera.sim.randprog import FAULT_KINDS, classify, generate, random_illegal_word, run_on_model

FAULT_CAUSES = {
    "load_misaligned": Cause.LOAD_MISALIGNED,
    "store_misaligned": Cause.STORE_MISALIGNED,
    "load_outside": Cause.LOAD_FAULT,
    "store_outside": Cause.STORE_FAULT,
    "illegal": Cause.ILLEGAL_INSN,
    "jump_misaligned": Cause.INSN_MISALIGNED,
    "branch_misaligned": Cause.INSN_MISALIGNED,
    "fetch_outside": Cause.FETCH_FAULT,
}


def test_programs_are_deterministic_in_their_seed() -> None:
    assert generate(7).words == generate(7).words
    assert generate(7).words != generate(8).words


def test_fault_free_programs_end_in_the_dump_with_all_registers() -> None:
    for seed in range(60):
        program = generate(seed)
        outcome = run_on_model(program)
        assert outcome.state == TileState.TRAPPED
        assert outcome.cause in (Cause.ECALL, Cause.BREAKPOINT)
        assert outcome.pc == program.dump_entry + 4 * 32
        assert outcome.registers is not None and len(outcome.registers) == 31


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_is_reached(kind: str) -> None:
    causes = collections.Counter(run_on_model(generate(seed, fault=kind)).cause for seed in range(25))
    # A forward branch may skip the fault item, but most programs must reach it.
    assert causes[FAULT_CAUSES[kind]] >= 15, causes


def test_registers_are_recovered_after_a_fault() -> None:
    program = generate(3, fault="illegal")
    outcome = run_on_model(program)
    assert outcome.cause == Cause.ILLEGAL_INSN and outcome.registers is not None
    assert outcome.pc < program.dump_entry


def test_random_illegal_words_are_illegal() -> None:
    import random

    rng = random.Random(1)
    words = {random_illegal_word(rng) for _ in range(200)}
    assert len(words) > 150 and all(classify(word) == "illegal" for word in words)
    assert classify(0x0000_0013) == "legal"  # nop


def test_unknown_fault_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'melt'"):
        generate(1, fault="melt")


def test_message_programs_sleep_answer_and_fault_through_the_unit() -> None:
    causes = collections.Counter()
    messages = 0
    for seed in range(40):
        program = generate(seed, body_items=30, fault="random", messages=True)
        messages += program.description.count("message")
        causes[run_on_model(program).cause] += 1
    assert messages >= 80 and causes[Cause.MESSAGE_FAULT] >= 2, (messages, causes)


def test_operand_message_unit_is_not_ready_then_answers() -> None:
    from tessera.sim.randprog import OperandMessageUnit

    unit = OperandMessageUnit()
    # (rs1 ^ rs2) % 3 == 2: two "not ready" answers, then the result.
    assert [unit.execute(1, 2, 5, 7) for _ in range(2)] == [None, None]
    reply = unit.execute(1, 2, 5, 7)
    assert reply is not None and not reply.fault and reply.result == 5 + 21 + 16 + 1
    fault = unit.execute(7, 0, 3, 3)
    assert fault is not None and fault.fault and fault.cause == Cause.MESSAGE_FAULT
