"""`make bench-fit`: per board, the largest tile count that fits and meets timing, with the host link included.

Prints exactly these `name: value` lines (every figure measured on this run):

    tiles_up5k: N            most tiles on the iCEBreaker (UP5K) that fit and meet the target clock
    fmax_up5k_mhz: F         achieved Fmax of that build
    lcs_up5k: N              its logic cells
    ebr_up5k: N              its block RAMs
    tiles_hx8k: N            the same on the HX8K breakout
    fmax_hx8k_mhz: F
    tiles_hx1k: N            the same on the iCEstick (HX1K); 0 when not even one tile fits (its chip then has
                             no tiles: the host link and the I/O node, boards/icestick.py)
    build_up5k_s: S          wall-clock seconds of the UP5K build of tiles_up5k tiles
    aggregate_mips_up5k: M   tiles_up5k x fmax_up5k_mhz / CPI (CPI from tessera.sim.bench_core's measurement)

Search: the 1- and 2-tile builds give the cost of a tile (logic cells and EBR, from nextpnr's packing report);
the linear prediction of the largest count bounds a binary search over real builds (a count is good when it fits
and meets timing, bad otherwise). With no usable count, the tile figure is 0 and the other figures describe the
1-tile build (stderr says why). Builds go to build/boards/fit/<board>-<tiles>/; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from tessera.boards.board import Board
from tessera.boards.build import BOARD_BUILD_ROOT, BOARDS, DEFAULT_CORE, DEFAULT_SEED, BuildResult, build

#: The boards measured, by the device name the figures use.
FIT_BOARDS = (("up5k", "icebreaker"), ("hx8k", "hx8k"), ("hx1k", "icestick"))
#: Resources a tile consumes, for the prediction.
_TILE_RESOURCES = ("ICESTORM_LC", "ICESTORM_RAM")


@dataclass
class FitSearch:
    board: Board
    mhz: float | None
    seed: int
    results: dict[int, BuildResult]

    def attempt(self, tiles: int) -> BuildResult:
        if tiles not in self.results:
            print(f"[bench-fit] {self.board.name}: trying {tiles} tiles", file=sys.stderr, flush=True)
            result = build(
                self.board,
                tiles,
                mhz=self.mhz,
                seed=self.seed,
                build_dir=BOARD_BUILD_ROOT / "fit" / f"{self.board.name}-{tiles}",
                quiet=True,
            )
            verdict = result.failure() or f"ok, Fmax {result.fmax_mhz:.2f} MHz"
            print(f"[bench-fit]   {verdict} ({result.seconds:.0f} s)", file=sys.stderr, flush=True)
            self.results[tiles] = result
        return self.results[tiles]

    def good(self, tiles: int) -> bool:
        return self.attempt(tiles).ok


def predicted_limit(one: BuildResult, two: BuildResult) -> int:
    """Largest tile count the linear cost model (from the 1- and 2-tile builds) says fits."""
    limit = None
    for resource in _TILE_RESOURCES:
        per_tile = two.used(resource) - one.used(resource)
        available = one.utilization.get(resource, (0, 0))[1]
        if per_tile > 0 and available:
            fits = 1 + (available - one.used(resource)) // per_tile
            limit = fits if limit is None else min(limit, fits)
    return max(1, limit if limit is not None else 2)


def largest_fit(board: Board, mhz: float | None, seed: int) -> tuple[int, FitSearch]:
    """The largest good tile count (0 if one tile is not good) and the search with every build it ran."""
    search = FitSearch(board, mhz, seed, {})
    if not search.good(1):
        return 0, search
    if not search.good(2):
        return 1, search
    # Invariant: `low` is good. Try the prediction first; step past it while the model proves pessimistic.
    low, high = 2, max(3, predicted_limit(search.results[1], search.results[2]))
    while search.good(high):
        low, high = high, high + 1
    # Now `high` is bad: binary search between the two.
    while high - low > 1:
        middle = (low + high) // 2
        if search.good(middle):
            low = middle
        else:
            high = middle
    return low, search


def measured_cpi() -> float:
    """Cycles per instruction of the boards' tile core on the bench program (tessera.sim.bench_core's measurement)."""
    from tessera.sim.bench_core import measure_cpi

    return measure_cpi(DEFAULT_CORE).cpi


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="nextpnr placement seed")
    parser.add_argument("--mhz", type=float, help="target clock for every board (default: each board's own)")
    parser.add_argument("--only", choices=[device for device, _ in FIT_BOARDS], action="append",
                        help="measure only these devices (repeatable); the other lines are left out")
    args = parser.parse_args(argv)
    devices = args.only or [device for device, _ in FIT_BOARDS]

    figures: dict[str, str] = {}
    for device, board_name in FIT_BOARDS:
        if device not in devices:
            continue
        tiles, search = largest_fit(BOARDS[board_name], args.mhz, args.seed)
        figures[f"tiles_{device}"] = str(tiles)
        # With no good count, the figures describe the 1-tile build (and say why on stderr).
        best = search.results[max(tiles, 1)]
        if tiles == 0:
            print(f"[bench-fit] {board_name}: no tile count is usable: {best.failure()}", file=sys.stderr)
        fmax = best.fmax_mhz or 0.0
        if device == "up5k":
            figures["fmax_up5k_mhz"] = f"{fmax:.2f}"
            figures["lcs_up5k"] = str(best.used("ICESTORM_LC"))
            figures["ebr_up5k"] = str(best.used("ICESTORM_RAM"))
            figures["build_up5k_s"] = f"{best.seconds:.1f}"
            figures["aggregate_mips_up5k"] = f"{tiles * fmax / measured_cpi():.2f}" if tiles else "0"
        if device == "hx8k":
            figures["fmax_hx8k_mhz"] = f"{fmax:.2f}"

    order = ("tiles_up5k", "fmax_up5k_mhz", "lcs_up5k", "ebr_up5k", "tiles_hx8k", "fmax_hx8k_mhz", "tiles_hx1k",
             "build_up5k_s", "aggregate_mips_up5k")
    for name in order:
        if name in figures:
            print(f"{name}: {figures[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
