"""Synthesis smoke check: the tile core goes through yosys and nextpnr packing, fits a UP5K, and the report
parser reads its figures. (`make bench-core` reports the figures themselves; the 450-cell budget is not asserted.)"""

from __future__ import annotations

import pytest

from tessera.boards.synth import SynthError, parse_report, synthesize
from tessera.hw.core import TileCore


def test_core_packs_into_a_up5k() -> None:
    result = synthesize(TileCore(mem_bytes=2048), "test_core_alone", pack_only=True)
    assert result.logic_cells_available == 5280
    assert result.ebr_available == 30
    assert 0 < result.logic_cells
    assert result.fits, f"{result.logic_cells} LCs / {result.ebr} EBR do not fit a UP5K"
    assert result.fmax_mhz is None


def test_report_parser_reads_utilisation_and_sync_clock() -> None:
    report = {
        "utilization": {"ICESTORM_LC": {"used": 412, "available": 5280}, "ICESTORM_RAM": {"used": 2, "available": 30}},
        "fmax": {"clk$SB_IO_IN_$glb_clk": {"achieved": 41.5, "constraint": 60.0}},
    }
    assert parse_report(report, "up5k") == (412, 5280, 2, 30, 41.5)


def test_report_parser_rejects_a_report_without_logic_cells() -> None:
    with pytest.raises(SynthError, match="no ICESTORM_LC"):
        parse_report({"utilization": {}}, "up5k")
