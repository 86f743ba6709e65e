"""`make bench-core`: the tile core's size, speed and cycles per instruction, measured.

Prints exactly these lines:

    core_lcs: N              packed iCE40 logic cells of the core alone (nextpnr --pack-only, UP5K)
    core_ebr: N              block RAMs of the core alone (its register file)
    core_fmax_up5k_mhz: F    achieved Fmax after place and route on a UP5K (sg48) of a whole Tile (core and its
                             memory) inside a SerialShell, so every port is registered (fixed nextpnr seed)
    core_cpi: C              clock cycles from `run` to the ECALL of firmware/c/bench.c on the Tile's Verilog
                             (Verilator), divided by the instructions the Tile's `retired` output reported
    core_mips_up5k: M        core_fmax_up5k_mhz / core_cpi

`--core {parallel,serial,bit}` picks the core (default: bit, BitSerialTileCore: the core sized for the UP5K's
8-tile budget of issue 2; `parallel` is the fast 818-LC TileCore the simulated chip uses by default); the core
alone is measured without a message unit, as the tile in the shell and the Verilator run.

Every figure is measured on each run; nothing is cached except tool builds of unchanged designs. The bench
result is checked against the golden model, so a wrong core cannot report a CPI.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from tessera.boards.serial_shell import SerialShell
from tessera.boards.synth import DEFAULT_SEED, synthesize
from tessera.firmware.cc import compile_program
from tessera.firmware.isa import Cause, TileState
from tessera.hw.tile import CORES, Tile, core_class
from tessera.sim.tile_with_loader import TileWithLoader
from tessera.sim import cocotb_runner
from tessera.sim.cocotb_tile import DESIGN_NAME, MEM_BYTES, TEST_MODULE, TILE_ID
from tessera.sim.model import TileModel

BENCH_PROGRAM = "bench"
MAX_CYCLES = 5_000_000


@dataclass(frozen=True)
class CpiMeasurement:
    cycles: int
    retired: int

    @property
    def cpi(self) -> float:
        return self.cycles / self.retired


def measure_cpi(core: str = "parallel", simulator: cocotb_runner.Simulator = "verilator") -> CpiMeasurement:
    """Run bench.c on the Verilog of a Tile with `core`; check its result against the model; return cycles and
    retirements."""
    image = compile_program(BENCH_PROGRAM, MEM_BYTES)
    batch = {
        "images": [{"name": BENCH_PROGRAM, "words": image.words(), "max_cycles": MAX_CYCLES}],
        "read_words": MEM_BYTES // 4,
    }
    tile = TileWithLoader(Tile(mem_bytes=MEM_BYTES, tile_id=TILE_ID, core=core))
    build = cocotb_runner.build(tile, DESIGN_NAME, simulator)
    (record,) = cocotb_runner.run(build, TEST_MODULE, testcase="run_images", payload=batch).output
    model = TileModel(MEM_BYTES, tile_id=TILE_ID)
    model.load_bytes(image.data)
    model.run(MAX_CYCLES)
    result_word = image.address("bench_result") // 4
    if (record["state"], record["cause"]) != (TileState.TRAPPED, Cause.ECALL):
        raise RuntimeError(f"bench stopped in state {record['state']} cause {record['cause']} at pc {record['pc']:#x}")
    if record["memory"][result_word] != model.read_word(image.address("bench_result")):
        raise RuntimeError(
            f"bench result {record['memory'][result_word]:#x} differs from the model's"
            f" {model.read_word(image.address('bench_result')):#x}"
        )
    if record["retired"] != model.instret:
        raise RuntimeError(f"the tile retired {record['retired']} instructions, the model executed {model.instret}")
    return CpiMeasurement(cycles=record["cycles"], retired=record["retired"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="nextpnr placement seed")
    parser.add_argument("--core", choices=CORES, default="bit", help="the tile core to measure")
    args = parser.parse_args(argv)

    suffix = f"_{args.core}"
    core = synthesize(core_class(args.core)(mem_bytes=MEM_BYTES, tile_id=TILE_ID), f"bench_core{suffix}", pack_only=True)
    tile = Tile(mem_bytes=MEM_BYTES, tile_id=TILE_ID, core=args.core)
    shell = synthesize(SerialShell(tile), f"bench_tile_shell{suffix}", seed=args.seed)
    if shell.fmax_mhz is None:
        raise RuntimeError(f"nextpnr reported no Fmax for {shell.build_dir}")
    cpi = measure_cpi(args.core)
    print(f"core_lcs: {core.logic_cells}")
    print(f"core_ebr: {core.ebr}")
    print(f"core_fmax_up5k_mhz: {shell.fmax_mhz:.2f}")
    print(f"core_cpi: {cpi.cpi:.3f}")
    print(f"core_mips_up5k: {shell.fmax_mhz / cpi.cpi:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
