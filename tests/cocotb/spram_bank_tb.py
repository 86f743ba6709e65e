"""cocotb test of `tessera.hw.spram_bank.SpramBank` in its SB_SPRAM256KA form (tests/test_spram_bank.py).

Yosys's model of the primitive stands in for the silicon. Random traffic (`BankTraffic`) drives every port; each
cycle the bank's `ready` outputs must match `SpramBankModel`, and a taken read's word must arrive the next cycle.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer

from tessera.sim.cocotb_runner import load_payload, save_output
from tessera.sim.spram_bank_model import BankTraffic, SpramBankModel


@cocotb.test()
async def bank_matches_model(dut) -> None:
    settings = load_payload()
    ports, cycles = settings["ports"], settings["cycles"]
    model = SpramBankModel(ports)
    traffic = BankTraffic(ports, settings["addr_bits"], settings["seed"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 0
    pins = [{name: getattr(dut, f"ports__{port}__{name}") for name in (
        "addr", "re", "we", "wdata", "wmask", "cannot_wait", "ready", "rdata")} for port in range(ports)]
    expected_read: int | None = None
    reads = writes = waits = 0
    for cycle in range(cycles):
        await FallingEdge(dut.clk)
        if expected_read is not None:
            got = int(pins[0]["rdata"].value)
            assert got == expected_read, f"cycle {cycle}: read {got:#010x}, expected {expected_read:#010x}"
        requests = traffic.requests()
        for port, request in enumerate(requests):
            pin = pins[port]
            pin["re"].value = int(request is not None and not request.write)
            pin["we"].value = int(request is not None and request.write)
            pin["addr"].value = request.addr if request else 0
            pin["wdata"].value = request.data if request else 0
            pin["wmask"].value = request.mask if request else 0
            pin["cannot_wait"].value = int(request is not None and request.cannot_wait)
        taken = model.cycle(requests)
        await Timer(1, unit="ns")
        got_taken = [bool(int(pin["ready"].value)) for pin in pins]
        assert got_taken == taken, f"cycle {cycle}: ready {got_taken}, expected {taken} for {requests}"
        expected_read = model.read_data
        reads += model.read_data is not None
        writes += any(t and r is not None and r.write for t, r in zip(taken, requests))
        waits += sum(r is not None and not t for t, r in zip(taken, requests))
        traffic.advance(taken)
    save_output({"reads": reads, "writes": writes, "waits": waits})
