"""Assembly tile programs using the msg.* instructions on the whole chip under Verilator (over the byte link).

The cocotb side is tests/cocotb/chip_programs_tb.py (its docstring lists the programs and checks). All of its
tests run in one simulator launch on the same chip build as tests/test_chip.py (identical Verilog, so the cached
build is shared). The neighbour message latency it measures is printed (`pytest -s`) and checked for sanity.
"""

from __future__ import annotations

import pytest

from tessera.hw.chip import TesseraChip
from tessera.sim import cocotb_runner

TILES = 4
MAILBOX_DEPTH = 8
CLOCK_HZ = 100_000_000  # as tests/test_chip.py: the same parameters give the same Verilog and share its build


def run_programs(**chip_options: object) -> cocotb_runner.CocotbRun:
    """Run chip_programs_tb on a Verilator build of the chip with `chip_options` (beyond the shared parameters);
    every program must pass (cocotb_runner raises otherwise). Returns the run's result."""
    chip = TesseraChip(tiles=TILES, mem_bytes=1024, mailbox_depth=MAILBOX_DEPTH, link="bytes", clock_hz=CLOCK_HZ,
                       **chip_options)
    design = cocotb_runner.build(chip, "tessera_chip_bytes", "verilator")
    result = cocotb_runner.run(
        design,
        "chip_programs_tb",
        env={"TESSERA_CHIP_TILES": str(TILES), "TESSERA_CHIP_MAILBOX_DEPTH": str(MAILBOX_DEPTH)},
    )
    assert {outcome.name for outcome in result.outcomes} == {"ping_pong", "fan_in", "ring_token", "neighbour_latency"}
    return result


@pytest.mark.slow
def test_tile_programs_on_chip() -> None:
    latency = run_programs().output
    assert latency is not None, "neighbour_latency saved no measurement"
    samples = latency["samples"]
    # Every sample includes at least one ring hop and the rdcycle that reads the end time.
    assert min(samples) > latency["rdcycle_to_rdcycle_cycles"] > 0, latency
    print(
        f"\nmsg_latency_neighbour_cycles = {latency['msg_latency_neighbour_cycles']}"
        f" (median of {samples}; one rdcycle to the next costs {latency['rdcycle_to_rdcycle_cycles']})"
    )


@pytest.mark.slow
def test_tile_programs_on_the_hx8k_chip_build() -> None:
    """The same programs on the chip as the HX8K board builds it (boards/hx8k.py): bit-serial cores and mailboxes
    that keep the staged message in the queue's block RAM (`separate_staging=False`), which the block and node
    tests cover (tests/test_mailbox.py, tests/test_fault_blocks.py) but no other whole-chip test does."""
    run_programs(core="bit", separate_staging=False)
