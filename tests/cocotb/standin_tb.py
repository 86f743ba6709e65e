"""cocotb tests for the runner's stand-in design (tests/test_cocotb_runner.py): an accumulator.

The design adds `addend` into `total` on every clock where `valid` is high. The values to add come from the
runner's JSON payload; `TESSERA_STANDIN_EXPECTED` is the total the test must see (the pytest side computes it,
and passes a wrong one to check that a failure reaches pytest).
"""

from __future__ import annotations

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from tessera.sim.cocotb_runner import load_payload, save_output


@cocotb.test()
async def accumulates_payload(dut) -> None:
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.valid.value = 0
    dut.addend.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    values = load_payload()
    assert isinstance(values, list), f"payload must be a list of addends, got {type(values).__name__}"
    for value in values:
        dut.addend.value = value
        dut.valid.value = 1
        await RisingEdge(dut.clk)
    dut.valid.value = 0
    await ClockCycles(dut.clk, 2)
    total = int(dut.total.value)
    expected = int(os.environ["TESSERA_STANDIN_EXPECTED"])
    assert total == expected, f"total {total} != expected {expected}"
    save_output({"total": total, "count": len(values)})
