"""cocotb side of the long network stress run: a TrafficBench (hw/noc_bench.py) left to run at full speed.

Python wakes only every `poll_cycles` cycles to read the bench's totals, so the run goes at the simulator's speed.
Payload (JSON): {"poll_cycles": int, "max_cycles": int}. Output: the totals, the cycle when every node had sent
its quota, the cycle when the last message was received, and the simulation speed.
"""

import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer

from tessera.sim.cocotb_runner import load_payload, save_output

CLOCK_NS = 10


def totals(dut) -> dict[str, int]:
    return {
        name: int(getattr(dut, name).value)
        for name in ("sent", "received", "duplicates", "gaps", "corrupt", "done_sending", "cycles")
    }


@cocotb.test()
async def traffic_drains_without_loss(dut) -> None:
    params = load_payload()
    poll, max_cycles = params["poll_cycles"], params["max_cycles"]
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    dut.enable.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    dut.enable.value = 1
    started = time.perf_counter()
    sending_done_at = None
    while True:
        await Timer(poll * CLOCK_NS, unit="ns")
        now = totals(dut)
        if now["done_sending"] and sending_done_at is None:
            sending_done_at = now["cycles"]
        if now["done_sending"] and now["received"] == now["sent"]:
            break
        assert now["cycles"] < max_cycles, f"traffic did not drain within {max_cycles} cycles: {now}"
    elapsed = time.perf_counter() - started
    save_output(
        {**now, "sending_done_at": sending_done_at, "cycles_per_s": now["cycles"] / elapsed, "seconds": elapsed}
    )
