"""The per-module area report (boards/area.py, `make area`)."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.boards.area import ModuleArea, format_table, module_areas, parse_stat
from tessera.boards.synth import SynthError


class Accumulator(wiring.Component):
    """An 8-bit accumulator: an adder (carry chain) into flip-flops."""

    def __init__(self) -> None:
        super().__init__({"addend": In(8), "total": Out(8)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.sync += self.total.eq(self.total + self.addend)
        return m


class TwoAccumulators(wiring.Component):
    """Two accumulators as submodules plus an XOR of their totals in the top."""

    def __init__(self) -> None:
        super().__init__({"addend": In(8), "mixed": Out(8)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.first = first = Accumulator()
        m.submodules.second = second = Accumulator()
        inverted = Signal(8)
        m.d.comb += [
            first.addend.eq(self.addend),
            inverted.eq(~self.addend),
            second.addend.eq(inverted),
            self.mixed.eq(first.total ^ second.total),
        ]
        return m


def test_each_submodule_is_counted_on_its_own(tmp_path) -> None:
    areas = module_areas(TwoAccumulators(), tmp_path, "up5k")
    assert {"chip", "chip.first", "chip.second"} <= set(areas)
    for name in ("chip.first", "chip.second"):
        assert areas[name].flip_flops == 8 and areas[name].carries > 0 and areas[name].luts > 0
    assert areas["chip"].flip_flops == 0 and areas["chip"].luts >= 8  # the XOR stays in the top


STAT = {
    "modules": {
        "\\chip": {"num_cells_by_type": {"SB_LUT4": 10, "SB_DFF": 2, "SB_DFFE": 3, "chip.node0": 1}},
        "\\chip.node0": {"num_cells_by_type": {"SB_LUT4": 7, "SB_DFFESR": 4, "SB_CARRY": 2, "SB_RAM40_4K": 1}},
        "\\chip.node1": {"num_cells_by_type": {"SB_LUT4": 8, "SB_DFFESR": 4, "SB_CARRY": 2, "SB_RAM40_4K": 1}},
        "\\chip.node12.tile": {"num_cells_by_type": {"SB_LUT4": 1}},
    }
}


def test_stat_parser_counts_cell_kinds_per_module() -> None:
    areas = parse_stat(STAT)
    assert areas["chip"] == ModuleArea(luts=10, flip_flops=5, carries=0, block_rams=0)
    assert areas["chip.node0"] == ModuleArea(luts=7, flip_flops=4, carries=2, block_rams=1)


def test_table_lists_tile_zero_for_every_tile_and_totals_all_of_them() -> None:
    table = format_table(parse_stat(STAT), tiles=13).splitlines()
    assert [row.split()[0] for row in table[1:]] == ["chip", "chip.node0", "total"]
    assert "(x13)" in table[2]
    assert table[-1].split()[1:] == ["26", "13", "4", "2"]


def test_stat_without_modules_is_refused_by_name() -> None:
    with pytest.raises(SynthError, match="no 'modules' object"):
        parse_stat({"design": {}})
