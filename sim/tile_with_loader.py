"""A Tile with the host side of its serial debug port built in, for testbenches that load and read its memory a
word at a time (the cocotb tile testbench, `make bench-core`): they wait for `loader.done` instead of driving the
port's shifts from Python cycle by cycle, and read `retired_total` instead of counting `retired` pulses cycle by
cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.core import check_mem_bytes
from tessera.hw.debug_serializer import DebugSerializer
from tessera.hw.tile import Tile

__all__ = ["TileWithLoader"]


def LoaderSignature(addr_bits: int) -> wiring.Signature:
    """The word-wide port, seen from the testbench: `DebugSerializer`'s request side."""
    return wiring.Signature(
        {
            "addr": Out(addr_bits),
            "wdata": Out(32),
            "re": Out(1),
            "we": Out(1),
            "rdata": In(32),
            "done": In(1),
        }
    )


class TileWithLoader(wiring.Component):
    """`tile`'s ports (all but `debug`, same names) plus `loader`: `we` (with `wdata`, taken in that cycle) or `re`
    starts a word write or read at word `addr` (held until `done`; see DebugSerializer); `done` marks its end, and
    `rdata` holds the word read in that cycle. Held high, `re`/`we` start one transfer after another (`wdata` is
    taken as each starts, in the cycle after the previous `done`).

    `retired_total` is the number of `retired` pulses since reset, this cycle's included (it wraps at 2**32): a
    run retired the difference between its values at the stop and before the run pulse."""

    def __init__(self, tile: Tile) -> None:
        self._tile = tile
        self._addr_bits = check_mem_bytes(tile.mem_bytes)
        members = {name: member for name, member in tile.signature.members.items() if name != "debug"}
        super().__init__({**members, "loader": In(LoaderSignature(self._addr_bits)), "retired_total": Out(32)})

    @property
    def tile(self) -> Tile:
        return self._tile

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.tile = tile = self._tile
        m.submodules.serializer = serializer = DebugSerializer(addr_bits=self._addr_bits)
        wiring.connect(m, serializer.port, tile.debug)
        for name in ("addr", "re", "we"):
            m.d.comb += getattr(serializer, name).eq(getattr(self.loader, name))
        # The serializer's word register on this side. It takes `wdata` in every cycle without a shift, so it holds
        # the write's word when the first shift comes, and a read's word in the `done` cycle after its last shift.
        word = Signal(32)
        with m.If(serializer.shift):
            m.d.sync += word.eq(Cat(word[1:], serializer.rbit))
        with m.Else():
            m.d.sync += word.eq(self.loader.wdata)
        m.d.comb += [
            serializer.wbit.eq(word[0]),
            self.loader.rdata.eq(word),
            self.loader.done.eq(serializer.done),
        ]
        # Pulses in the cycles before this one. The total adds this cycle's: a testbench reading it in the cycle in
        # which the tile stopped counts an instruction that retires in that cycle.
        retired_before = Signal(32)
        m.d.sync += retired_before.eq(self.retired_total)
        m.d.comb += self.retired_total.eq(retired_before + tile.retired)
        for name in tile.signature.members:
            if name == "debug":
                continue
            ours, theirs = getattr(self, name), getattr(tile, name)
            if isinstance(ours, wiring.PureInterface):
                if tile.signature.members[name].flow == In:
                    wiring.connect(m, wiring.flipped(ours), theirs)
                else:
                    wiring.connect(m, theirs, wiring.flipped(ours))
            elif tile.signature.members[name].flow == In:
                m.d.comb += theirs.eq(ours)
            else:
                m.d.comb += ours.eq(theirs)
        return m
