"""Board support: the PLL calculator against icepll, flashing with the programmer mocked at the process boundary,
and real YoWASP builds (a tiny echo chip on every board; the real chip on the iCEstick, with no tiles)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.boards import bench_fit, build, flash
from tessera.boards.build import BOARDS, BuildResult
from tessera.boards.pll import (
    OUT_MAX_HZ,
    OUT_MIN_HZ,
    PFD_MAX_HZ,
    PFD_MIN_HZ,
    VCO_MAX_HZ,
    VCO_MIN_HZ,
    PllError,
    pll_config,
)

# ---- PLL ---------------------------------------------------------------------------------------------------------

#: `icepll -i 12 -o <MHz>` output: (requested MHz) -> (DIVR, DIVF, DIVQ, FILTER_RANGE, achieved MHz).
ICEPLL_12MHZ = {
    24: (0, 63, 5, 1, 24.0),
    25: (0, 66, 5, 1, 25.125),
    30: (0, 79, 5, 1, 30.0),
    36: (0, 47, 4, 1, 36.0),
    48: (0, 63, 4, 1, 48.0),
    100: (0, 66, 3, 1, 100.5),
}


@pytest.mark.parametrize("mhz", sorted(ICEPLL_12MHZ))
def test_pll_matches_icepll(mhz: int) -> None:
    config = pll_config(12e6, mhz * 1e6)
    divr, divf, divq, filter_range, achieved = ICEPLL_12MHZ[mhz]
    assert (config.divr, config.divf, config.divq, config.filter_range) == (divr, divf, divq, filter_range)
    assert config.output_hz == pytest.approx(achieved * 1e6)


@pytest.mark.parametrize("reference_mhz", [12, 16, 25, 100])
def test_pll_settings_stay_within_the_datasheet_limits(reference_mhz: float) -> None:
    for target_mhz in range(16, 276, 7):
        config = pll_config(reference_mhz * 1e6, target_mhz * 1e6)
        assert PFD_MIN_HZ <= config.pfd_hz <= PFD_MAX_HZ
        assert VCO_MIN_HZ <= config.vco_hz <= VCO_MAX_HZ
        assert OUT_MIN_HZ <= config.output_hz <= OUT_MAX_HZ
        # The closest setting is within one VCO step of the target.
        assert abs(config.output_hz - target_mhz * 1e6) <= config.pfd_hz / (1 << config.divq)


def test_pll_refuses_unreachable_clocks() -> None:
    with pytest.raises(PllError, match="PLL output 300 MHz outside"):
        pll_config(12e6, 300e6)
    with pytest.raises(PllError, match="PLL reference 5 MHz outside"):
        pll_config(5e6, 24e6)


# ---- flashing (subprocess mocked) ---------------------------------------------------------------------------------

ICEPROG_NO_DEVICE = (
    "init..\nCan't find iCE FTDI USB device (vendor_id 0x0403, device_id 0x6010 or 0x6014).\nABORT.\n"
)


class FakeProgrammer:
    """Stands in for subprocess.run: records the command, answers with a canned exit status and output."""

    def __init__(self, returncode: int, output: str) -> None:
        self.returncode, self.output = returncode, output
        self.commands: list[list[str]] = []

    def __call__(self, command, **kwargs):
        self.commands.append(list(command))
        return subprocess.CompletedProcess(command, self.returncode, stdout=self.output)


@pytest.fixture
def bitstream(tmp_path: Path) -> Path:
    path = tmp_path / "tessera.bin"
    path.write_bytes(b"\xff\x00\x00\xff")
    return path


@pytest.mark.parametrize(("board", "extra"), [("icebreaker", []), ("hx8k", ["-S"]), ("upduino", [])])
def test_flash_runs_iceprog(monkeypatch, capsys, bitstream: Path, board: str, extra: list[str]) -> None:
    programmer = FakeProgrammer(0, "flash ID: 0xEF 0x40 0x18 0x00\nVERIFY OK\ncdone: high\nBye.\n")
    monkeypatch.setattr(flash.subprocess, "run", programmer)
    monkeypatch.delenv("ICEPROG", raising=False)
    exit_code = flash.main(["--board", board, "--bitstream", str(bitstream), "--programmer", "iceprog"])
    assert exit_code == 0
    assert programmer.commands == [["iceprog", *extra, str(bitstream)]]
    assert f"{board} programmed" in capsys.readouterr().out


def test_flash_with_openfpgaloader(monkeypatch, bitstream: Path) -> None:
    programmer = FakeProgrammer(0, "Done\n")
    monkeypatch.setattr(flash.subprocess, "run", programmer)
    assert flash.main(["--board", "icebreaker", "--bitstream", str(bitstream), "--programmer", "openfpgaloader"]) == 0
    assert programmer.commands == [["openFPGALoader", "-b", "ice40_generic", "-f", str(bitstream)]]


def test_flash_without_a_board_says_so_in_one_line(monkeypatch, capsys, bitstream: Path) -> None:
    monkeypatch.setattr(flash.subprocess, "run", FakeProgrammer(2, ICEPROG_NO_DEVICE))
    exit_code = flash.main(["--board", "icebreaker", "--bitstream", str(bitstream), "--programmer", "iceprog"])
    captured = capsys.readouterr()
    assert exit_code == flash.EXIT_NO_BOARD
    assert captured.out == ""
    assert captured.err.splitlines() == ["error: no icebreaker attached: iceprog found no FTDI programmer on USB"]


def test_flash_reports_other_programmer_failures(monkeypatch, capsys, bitstream: Path) -> None:
    monkeypatch.setattr(flash.subprocess, "run", FakeProgrammer(1, "flash ID: 0xFF\nVERIFY FAILED\n"))
    assert flash.main(["--board", "icestick", "--bitstream", str(bitstream), "--programmer", "iceprog"]) == 1
    assert "VERIFY FAILED" in capsys.readouterr().err


def test_flash_needs_a_bitstream(monkeypatch, capsys, tmp_path: Path) -> None:
    programmer = FakeProgrammer(0, "")
    monkeypatch.setattr(flash.subprocess, "run", programmer)
    missing = tmp_path / "none.bin"
    assert flash.main(["--board", "icebreaker", "--bitstream", str(missing), "--programmer", "iceprog"]) == 2
    assert programmer.commands == []
    assert "make build BOARD=icebreaker" in capsys.readouterr().err


def test_flash_without_any_programmer_installed(monkeypatch, capsys, bitstream: Path) -> None:
    monkeypatch.setattr(flash.shutil, "which", lambda name: None)
    assert flash.main(["--board", "icebreaker", "--bitstream", str(bitstream)]) == 2
    assert "fpga-icestorm" in capsys.readouterr().err


# ---- fit search (builds mocked) ---------------------------------------------------------------------------------


def fake_result(tiles: int, *, lc_per_tile: int, lc_base: int, lcs: int) -> BuildResult:
    used = lc_base + lc_per_tile * tiles
    result = BuildResult(board="fake", tiles=tiles, target_mhz=24.0, build_dir=Path("."))
    result.utilization = {"ICESTORM_LC": (used, lcs), "ICESTORM_RAM": (2 * tiles, 30)}
    if used <= lcs:
        result.fmax_by_clock = {"clk": 30.0}
        result.bitstream = Path("tessera.bin")
    return result


@pytest.mark.parametrize(("lc_base", "lc_per_tile", "expected"), [(1500, 400, 9), (300, 600, 8), (5000, 400, 0)])
def test_fit_search_finds_the_largest_count(monkeypatch, lc_base: int, lc_per_tile: int, expected: int) -> None:
    built: list[int] = []

    def fake_build(board, tiles, **kwargs):
        built.append(tiles)
        return fake_result(tiles, lc_per_tile=lc_per_tile, lc_base=lc_base, lcs=5280)

    monkeypatch.setattr(bench_fit, "build", fake_build)
    tiles, _search = bench_fit.largest_fit(BOARDS["icebreaker"], None, 1)
    assert tiles == expected
    assert len(built) == len(set(built)) <= 6


# ---- real builds ---------------------------------------------------------------------------------------------------


class EchoChip(wiring.Component):
    """The smallest chip with the board-top contract: the UART echoed, the received level on the LEDs."""

    def __init__(self) -> None:
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "leds": Out(2)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.sync += [self.uart_tx.eq(self.uart_rx), self.leds.eq(self.leds.replicate(1) ^ ~self.uart_rx)]
        return m


def echo_chip(**_parameters) -> EchoChip:
    return EchoChip()


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_every_board_builds_a_bitstream(board: str) -> None:
    result = build.build(
        BOARDS[board], 1, build_dir=build.BOARD_BUILD_ROOT / "test" / f"echo-{board}", quiet=True,
        chip_factory=echo_chip,
    )
    assert result.failure() is None
    assert result.bitstream is not None and result.bitstream.stat().st_size > 10_000
    assert result.used("ICESTORM_PLL") == 1
    assert result.fmax_mhz is not None and result.fmax_mhz >= BOARDS[board].default_mhz - 0.5
    assert "PLL" in build.format_report(result)
    # Both halves of the synthesis map for the board's own device (its delay model, not Yosys's default HX one).
    script = (result.build_dir / f"{build.TOP_NAME}.ys").read_text()
    expected = {"up5k": "-device u", "hx8k": "-device hx", "hx1k": "-device hx"}[BOARDS[board].device]
    assert [line.count(expected) for line in script.splitlines() if "synth_ice40" in line] == [1, 1], script


@pytest.mark.slow
def test_icestick_builds_its_chip_without_tiles_and_refuses_one_tile(capsys) -> None:
    """The HX1K holds the real chip's host link and I/O node, the board's default (no tiles), but not a tile as
    well: one tile fails naming the logic cells; the default builds a bitstream that meets timing."""
    assert build.main(["--board", "icestick", "--tiles", "1"]) == 1
    out, err = capsys.readouterr()
    assert "error: icestick with 1 tiles does not fit: ICESTORM_LC" in err
    exit_code = build.main(["--board", "icestick"])
    out, err = capsys.readouterr()
    assert exit_code == 0, err
    assert "[icestick] 0 bit-core tiles" in out and "meets timing" in out
    assert "bitstream: build/boards/icestick/tessera.bin" in out


@pytest.mark.slow
def test_icebreaker_default_configuration_fits_and_meets_timing(capsys) -> None:
    """CI builds the iCEBreaker's default configuration (its default tile count of bit-core tiles, the host link,
    the I/O node and its LEDs and button) and fails when it does not fit or misses the board's clock."""
    board = BOARDS["icebreaker"]
    exit_code = build.main(["--board", "icebreaker"])
    out, err = capsys.readouterr()
    assert exit_code == 0, err
    assert f"{board.default_tiles} bit-core tiles" in out
    assert "meets timing" in out and "bitstream: build/boards/icebreaker/tessera.bin" in out
