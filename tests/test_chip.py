"""The chip top under Verilator: fault containment for every cause over the byte link, and the UART link.

The cocotb side is tests/cocotb/chip_tb.py (its docstring lists what each test checks); the host there is
tests/cocotb/chip_host.py. Each Verilator build of the chip takes a few minutes the first time and is cached.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tessera.hw.chip import TesseraChip
from tessera.sim import cocotb_runner

TILES = 4
#: 10 ns cocotb clock = 100 MHz; 3.125 Mbaud is a whole 320 ns per bit (cocotbext-uart truncates to whole ns).
CLOCK_HZ = 100_000_000
BAUD = 3_125_000


@pytest.mark.slow
def test_fault_containment_every_cause() -> None:
    chip = TesseraChip(tiles=TILES, mem_bytes=1024, link="bytes", clock_hz=CLOCK_HZ)
    design = cocotb_runner.build(chip, "tessera_chip_bytes", "verilator")
    cocotb_runner.run(design, "chip_tb", testcase="fault_containment", env={"TESSERA_CHIP_TILES": str(TILES)})


@pytest.mark.slow
def test_uart_link_bit_level() -> None:
    chip = TesseraChip(tiles=2, mem_bytes=1024, link="uart", clock_hz=CLOCK_HZ, baud=BAUD)
    design = cocotb_runner.build(chip, "tessera_chip_uart", "verilator")
    cocotb_runner.run(
        design, "chip_tb", testcase="uart_link", env={"TESSERA_CHIP_TILES": "2", "TESSERA_CHIP_BAUD": str(BAUD)}
    )


def test_chip_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="link='spi'"):
        TesseraChip(tiles=2, link="spi")
    with pytest.raises(ValueError, match=r"tiles=0: a chip has 1..126 tiles \(none only with LEDs or buttons"):
        TesseraChip(tiles=0)
    with pytest.raises(ValueError, match="1000"):
        TesseraChip(tiles=2, mem_bytes=1000)


def test_main_writes_verilog_and_summary(tmp_path) -> None:
    out = tmp_path / "chip.v"
    result = subprocess.run(
        [sys.executable, "-m", "tessera.hw", "--tiles", "2", "--mem-bytes", "1024", "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Tessera chip: 2 tiles x 1024 B memory" in result.stdout
    assert "module tessera_chip(" in out.read_text()
