"""The Tile configuration that the cocotb tile testbench (tests/cocotb/tile_tb.py) and the core benchmark share.

One configuration means one compiled simulator build (cached by tessera.sim.cocotb_runner) for the tests and
`make bench-core` alike.
"""

from __future__ import annotations

import functools

from tessera.hw.tile import Tile
from tessera.sim import cocotb_runner
from tessera.sim.tile_with_loader import TileWithLoader

#: The smallest memory random programs (tessera.sim.randprog) accept; the C programs fit it too.
MEM_BYTES = 2048
#: Random programs read mhartid, so the generator is told this id.
TILE_ID = 0x5A
DESIGN_NAME = "tile_tb_top"
TEST_MODULE = "tile_tb"


@functools.cache
def build_tile(simulator: cocotb_runner.Simulator) -> cocotb_runner.CocotbBuild:
    """The compiled Tile (with its word-wide loader) for `simulator` (built once per Verilog text; converted to
    Verilog once per process)."""
    return cocotb_runner.build(TileWithLoader(Tile(mem_bytes=MEM_BYTES, tile_id=TILE_ID)), DESIGN_NAME, simulator)
