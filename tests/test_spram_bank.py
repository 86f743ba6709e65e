"""SpramBank (hw/spram_bank.py) against SpramBankModel: the behavioural form in Amaranth's simulator, the
SB_SPRAM256KA form under Icarus with Yosys's model of the primitive (cocotb)."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.sim import Simulator

from tessera.hw.spram_bank import SpramBank, bank_slot_bytes, uses_spram_primitives
from tessera.sim import cocotb_runner, toolchain
from tessera.sim.spram_bank_model import BankRequest, BankTraffic, SpramBankModel


class UltraPlus:
    """Just enough of an iCE40 UP5K platform for elaboration to choose the primitives."""

    device = "iCE40UP5K"


def run_against_model(ports: int, addr_bits: int, seed: int, cycles: int) -> dict[str, int]:
    bank = SpramBank(ports=ports, addr_bits=addr_bits)
    model = SpramBankModel(ports)
    traffic = BankTraffic(ports, addr_bits, seed)
    counts = {"reads": 0, "waits": 0}

    async def bench(ctx) -> None:
        for cycle in range(cycles):
            requests = traffic.requests()
            for port, request in zip(bank.ports, requests):
                ctx.set(port.re, request is not None and not request.write)
                ctx.set(port.we, request is not None and request.write)
                ctx.set(port.addr, request.addr if request else 0)
                ctx.set(port.wdata, request.data if request else 0)
                ctx.set(port.wmask, request.mask if request else 0)
                ctx.set(port.cannot_wait, request is not None and request.cannot_wait)
            taken = model.cycle(requests)
            assert [bool(ctx.get(port.ready)) for port in bank.ports] == taken, f"cycle {cycle}: {requests}"
            await ctx.tick()
            if model.read_data is not None:
                counts["reads"] += 1
                for port in bank.ports:  # every port sees the word
                    assert ctx.get(port.rdata) == model.read_data, f"cycle {cycle}"
            counts["waits"] += sum(r is not None and not t for r, t in zip(requests, taken))
            traffic.advance(taken)

    sim = Simulator(bank)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return counts


@pytest.mark.parametrize("ports", [1, 2, 3, 4])
def test_behavioural_bank_matches_model(ports: int) -> None:
    addr_bits = (bank_slot_bytes(ports) // 4).bit_length() - 1
    counts = run_against_model(ports, addr_bits, seed=ports, cycles=1500)
    assert counts["reads"] > 200
    assert (counts["waits"] > 50) == (ports > 1)  # contention happened, and only where there is sharing


def test_narrow_ports_use_the_bottom_of_their_slice() -> None:
    run_against_model(2, 10, seed=7, cycles=800)


def test_slices_keep_ports_apart() -> None:
    model = SpramBankModel(2)
    model.cycle([BankRequest(addr=5, write=True, data=0x1111_1111), None])
    model.cycle([None, BankRequest(addr=5, write=True, data=0x2222_2222)])
    model.cycle([BankRequest(addr=5), None])
    assert model.read_data == 0x1111_1111
    assert model.cycle([BankRequest(addr=1), BankRequest(addr=1, cannot_wait=True)]) == [False, True]


def test_model_refuses_two_requests_that_cannot_wait() -> None:
    with pytest.raises(ValueError, match="cannot wait in the same cycle"):
        SpramBankModel(2).cycle([BankRequest(addr=0, cannot_wait=True), BankRequest(addr=1, cannot_wait=True)])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_sizes_and_platforms() -> None:
    assert [bank_slot_bytes(n) for n in (1, 2, 3, 4)] == [65536, 32768, 16384, 16384]
    with pytest.raises(ValueError, match="1..4 tiles"):
        bank_slot_bytes(5)
    with pytest.raises(ValueError, match="addr_bits=14"):
        SpramBank(ports=2, addr_bits=14)
    assert not uses_spram_primitives(None)
    assert uses_spram_primitives(UltraPlus())

    class Hx8k:
        device = "iCE40HX8K"

    with pytest.raises(ValueError, match="iCE40HX8K has no SPRAM"):
        uses_spram_primitives(Hx8k())


def test_primitive_bank_matches_model_under_icarus(tmp_path: Path) -> None:
    primitive = tmp_path / "SB_SPRAM256KA.v"
    primitive.write_text(toolchain.ice40_cell_model("SB_SPRAM256KA"))
    bank = SpramBank(ports=2, addr_bits=13)
    design = cocotb_runner.build(bank, "spram_bank", "icarus", platform=UltraPlus(), library_sources=[primitive])
    assert "SB_SPRAM256KA" in design.verilog_path.read_text()
    run = cocotb_runner.run(design, "spram_bank_tb", payload={"ports": 2, "addr_bits": 13, "seed": 11, "cycles": 3000})
    assert run.output["reads"] > 500 and run.output["writes"] > 500 and run.output["waits"] > 100
