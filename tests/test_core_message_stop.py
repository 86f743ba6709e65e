"""A stop (halt, fault_in) that meets the message unit's answer: the answered instruction completes, every core.

The unit's effects (a message taken from the mailbox, a word staged or sent) happen in the cycle it answers
(hw/message_unit.py's contract). A stop in that very cycle must therefore not abandon the instruction: it would
run again after `run` and take a second message, or send twice (seen on the chip as a lost sequence number and
as a GET that finds no word left: MESSAGE_FAULT). A stop in any earlier cycle of the wait abandons it
(test_core_bit / test_core_directed: `halt` while SLEEPING).
"""

from __future__ import annotations

import pytest

from tessera.firmware.isa import Cause, TileState
from tessera.hw.tile import CORES, Tile
from tessera.sim.amaranth_harness import TileBench, TileDriver, simulate
from tessera.sim.encode import ECALL, addi, custom0

#: x1 = 6; GET x2 (funct3 3, rs1 = rs2 = x1); ECALL. The GET is at 4, the ECALL at 8.
CODE = [addi(1, 0, 6), custom0(2, 3, 1, 1), ECALL]
ANSWER = 0xCAFE
#: The longest the slowest core (bit-serial) takes to finish the GET and fetch the next instruction, with margin.
FINISH_CYCLES = 120


@pytest.mark.parametrize("delay", [1, 4])
@pytest.mark.parametrize("request_kind", ["halt", "fault"])
@pytest.mark.parametrize("core", CORES)
def test_stop_in_the_answer_cycle_completes_the_message_instruction(core: str, request_kind: str, delay: int):
    tile = Tile(mem_bytes=1024, has_message_unit=True, core=core)
    bench = TileBench(tile)
    port = tile.message

    async def until_stopped_without_a_second_request(ctx, driver: TileDriver) -> None:
        for _ in range(FINISH_CYCLES):
            if driver.status()[0] in (TileState.HALTED, TileState.TRAPPED):
                return
            assert not ctx.get(port.valid), "the answered instruction was issued again"
            await ctx.tick()
        raise AssertionError(f"the tile did not stop within {FINISH_CYCLES} cycles")

    async def testbench(ctx):
        driver = TileDriver(ctx, bench)
        await driver.write_words(CODE)
        await driver.pulse(tile.run)
        await ctx.tick().until(port.valid)
        await ctx.tick().repeat(delay)
        assert driver.status() == (TileState.SLEEPING, 0, 4)
        # the unit answers, and the stop request arrives in the same cycle
        ctx.set(port.result, ANSWER)
        ctx.set(port.ready, 1)
        if request_kind == "halt":
            ctx.set(tile.halt, 1)
        else:
            ctx.set(tile.fault_in_valid, 1)
            ctx.set(tile.fault_in_cause, Cause.WATCHDOG)
        await ctx.tick()
        for signal in (port.ready, tile.halt, tile.fault_in_valid, tile.fault_in_cause):
            ctx.set(signal, 0)
        await until_stopped_without_a_second_request(ctx, driver)
        assert driver.registers()[2] == ANSWER
        if request_kind == "halt":
            assert driver.status() == (TileState.HALTED, 0, 8)
            await driver.pulse(tile.run)
            await until_stopped_without_a_second_request(ctx, driver)
            assert driver.status() == (TileState.TRAPPED, Cause.ECALL, 12)
        else:
            assert driver.status() == (TileState.TRAPPED, Cause.WATCHDOG, 8)

    simulate(bench, testbench)
