"""The host bridge's tile bus: how the bridge reaches every tile's memory, control, status and configuration.

One small shared bus instead of an array of ports inside the bridge, so the bridge's size does not grow with
the tile count; `tessera.hw.tile_fanout.TileFanout` decodes it into per-tile ports.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def tile_select_bits(tile_count: int) -> int:
    return max(1, (tile_count - 1).bit_length())


def TileBusSignature(tile_count: int, addr_bits: int) -> wiring.Signature:
    """The bus seen from the bridge (the initiator).

    - `tile` selects the tile for every other member. `busy` (combinational from `tile`) = that tile is RUNNING or
      SLEEPING, so its memory is not reachable.
    - `re` with `space` = 0 reads memory word `addr`; with `space` = 1 it reads status word `addr`
      (`tessera.os.protocol.StatusWord`). `rdata` is valid the cycle after `re` and 0 in every other cycle (the
      bridge ORs it with the message port's result into one register input).
    - `we` writes `wdata` to memory word `addr` (whole words).
    - `run`, `halt`, `reset_pc`: one-cycle pulses to the selected tile's control inputs.
    - `config_we` writes `wdata` to the selected tile's configuration register `config_index`
      (`tessera.os.protocol.ConfigRegister`).
    """
    return wiring.Signature(
        {
            "tile": Out(tile_select_bits(tile_count)),
            "addr": Out(addr_bits),
            "space": Out(1),
            "re": Out(1),
            "we": Out(1),
            "wdata": Out(32),
            "rdata": In(32),
            "busy": In(1),
            "run": Out(1),
            "halt": Out(1),
            "reset_pc": Out(1),
            "config_we": Out(1),
            "config_index": Out(2),
        }
    )
