"""The cocotb runner (tessera.sim.cocotb_runner) on a stand-in design, on both simulators."""

# No `from __future__ import annotations`: Amaranth reads the signature annotations as objects.

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.sim import cocotb_runner
from tessera.sim.cocotb_runner import CocotbFailure

TOTAL_WIDTH = 16


class Accumulator(wiring.Component):
    """Adds `addend` into `total` (mod 2**16) on every clock where `valid` is high."""

    valid: In(1)
    addend: In(8)
    total: Out(TOTAL_WIDTH)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        with m.If(self.valid):
            m.d.sync += self.total.eq(self.total + self.addend)
        return m


ADDENDS = [3, 200, 17, 255, 0, 99]


@pytest.mark.parametrize("simulator", cocotb_runner.SIMULATORS)
def test_runner_passes_payload_and_returns_output(simulator: cocotb_runner.Simulator) -> None:
    design = cocotb_runner.build(Accumulator(), "standin_acc", simulator)
    result = cocotb_runner.run(
        design, "standin_tb", env={"TESSERA_STANDIN_EXPECTED": str(sum(ADDENDS))}, payload=ADDENDS
    )
    assert [o.name for o in result.outcomes] == ["accumulates_payload"]
    assert result.output == {"total": sum(ADDENDS), "count": len(ADDENDS)}
    # The same Verilog is never compiled twice.
    again = cocotb_runner.build(Accumulator(), "standin_acc", simulator)
    assert again.build_dir == design.build_dir
    assert not again.rebuilt


@pytest.mark.parametrize("simulator", cocotb_runner.SIMULATORS)
def test_runner_reports_failing_test(simulator: cocotb_runner.Simulator) -> None:
    design = cocotb_runner.build(Accumulator(), "standin_acc", simulator)
    expected = r"1 of 1 tests failed[\s\S]*accumulates_payload: .*total 574 != expected 1"
    with pytest.raises(CocotbFailure, match=expected):
        cocotb_runner.run(design, "standin_tb", env={"TESSERA_STANDIN_EXPECTED": "1"}, payload=ADDENDS)


def test_runner_rejects_unprefixed_parameters() -> None:
    design = cocotb_runner.build(Accumulator(), "standin_acc", "icarus")
    with pytest.raises(ValueError, match="must start with TESSERA_"):
        cocotb_runner.run(design, "standin_tb", env={"EXPECTED": "1"})


def test_design_name_must_be_identifier() -> None:
    component = Accumulator()
    with pytest.raises(ValueError, match="not a Verilog identifier"):
        cocotb_runner.design_verilog(component, "bad-name")
    assert "module good_name(" in cocotb_runner.design_verilog(component, "good_name")
