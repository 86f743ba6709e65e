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
    - `re` (one cycle) with `space` = 1 reads status word `addr` (`tessera.os.protocol.StatusWord`): `rdata` holds it
      in the cycle after `re`, with `done` = 1, and is 0 in every other cycle (the bridge ORs it with the message
      port's result into one register input). With `space` = 0 it reads memory word `addr`, which travels over the
      tile's serial debug port: the bridge's word register is the port's shift register on this side (`word_shift`
      below), holding the word when `done` follows (35 + address bits cycles after `re`).
    - `we` (one cycle) writes the word in the bridge's word register to memory word `addr` (whole words); `done` is
      1 when it is written (33 cycles later). `tile`, `addr` and `space` hold from `re`/`we` to `done`; nothing else
      is asked meanwhile.
    - `word_shift` (In): in this cycle of a memory transfer the bridge shifts its word register right by one bit,
      taking `word_in` at the top; the bit leaving, `wdata[0]`, goes to the tile (`DebugSerializer`).
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
            "done": In(1),
            "word_in": In(1),
            "word_shift": In(1),
            "busy": In(1),
            "run": Out(1),
            "halt": Out(1),
            "reset_pc": Out(1),
            "config_we": Out(1),
            "config_index": Out(2),
        }
    )
