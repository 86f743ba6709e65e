"""Decodes the host bridge's tile bus into one port per tile (the chip top wires these to the Tiles)."""

from amaranth import Array, C, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import TileState
from tessera.hw.tile_bus import TileBusSignature
from tessera.os.protocol import StatusWord


def TilePortSignature(addr_bits: int) -> wiring.Signature:
    """One tile's port, seen from the fanout: members named like `Tile`'s (debug, run, halt, reset_pc, state,
    cause, pc), plus `config_we`/`config_index`/`config_data` for the tile's configuration registers."""
    return wiring.Signature(
        {
            "debug": Out(
                wiring.Signature(
                    {
                        "addr": Out(addr_bits),
                        "re": Out(1),
                        "we": Out(1),
                        "wdata": Out(32),
                        "wmask": Out(4),
                        "rdata": In(32),
                    }
                )
            ),
            "run": Out(1),
            "halt": Out(1),
            "reset_pc": Out(1),
            "state": In(2),
            "cause": In(5),
            "pc": In(32),
            "config_we": Out(1),
            "config_index": Out(2),
            "config_data": Out(32),
        }
    )


class TileFanout(wiring.Component):
    """`bus` in (from HostBridge.tiles), `tiles[i]` out, `cycle` = the chip-wide cycle counter.

    Status words: STATE_CAUSE, PC, CYCLE_LO/HI (the high half is captured when the low half is read, so a STATUS
    reply holds one consistent 64-bit value), RETIRED/MESSAGES_IN/MESSAGES_OUT read 0 here (the counters live in the
    tile nodes; the chip top ORs them into the read data, hw/chip.py). All read data arrives the cycle after `re` as
    the bus requires (and is 0 in every other cycle); pc and the low cycle half are sampled in that cycle, state/cause
    and the high half at `re`."""

    def __init__(self, *, tile_count: int, addr_bits: int) -> None:
        self._tile_count = tile_count
        super().__init__(
            {
                "bus": In(TileBusSignature(tile_count, addr_bits)),
                "tiles": Out(TilePortSignature(addr_bits)).array(tile_count),
                "cycle": In(64),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        selected = Array(self.tiles)[bus.tile]
        for index, port in enumerate(self.tiles):
            chosen = bus.tile == index
            m.d.comb += [
                port.debug.addr.eq(bus.addr),
                port.debug.re.eq(chosen & bus.re & ~bus.space),
                port.debug.we.eq(chosen & bus.we),
                port.debug.wdata.eq(bus.wdata),
                port.debug.wmask.eq(0b1111),
                port.run.eq(chosen & bus.run),
                port.halt.eq(chosen & bus.halt),
                port.reset_pc.eq(chosen & bus.reset_pc),
                port.config_we.eq(chosen & bus.config_we),
                port.config_index.eq(bus.config_index),
                port.config_data.eq(bus.wdata),
            ]
        state = selected.state
        m.d.comb += bus.busy.eq((state == TileState.RUNNING) | (state == TileState.SLEEPING))

        # Read data as an AND-OR of one-hot selects registered at `re` (two inputs per LUT; a binary multiplexer
        # tree measured about the same at 8 tiles and worse at 2): a tile's memory word, a tile's pc, the low cycle
        # half, or `held`. The selects are 0 except in the cycle after `re`, and so is the read data
        # (TileBusSignature's contract). A pc is always a multiple of 4 (docs/isa.md): its two low bits read 0
        # without taking part. `held` is loaded at a STATE_CAUSE read with the selected tile's state/cause and at a
        # CYCLE_LO read with the high cycle half, kept for the CYCLE_HI read that follows it (STATUS reads the words
        # in order): one register whose every flip-flop has a LUT in front (a plain copy of the counter would sit
        # alone in its logic cell).
        index = bus.addr[:3]
        memory_sel = Signal(self._tile_count)
        pc_sel = Signal(self._tile_count)
        cycle_lo_sel = Signal()
        held_sel = Signal()
        held = Signal(32)
        m.d.sync += [memory_sel.eq(0), pc_sel.eq(0), cycle_lo_sel.eq(0), held_sel.eq(0)]
        with m.If(bus.re):
            for i in range(self._tile_count):
                chosen = bus.tile == i
                m.d.sync += [
                    memory_sel[i].eq(chosen & ~bus.space),
                    pc_sel[i].eq(chosen & bus.space & (index == StatusWord.PC)),
                ]
            with m.If(bus.space):
                with m.Switch(index):
                    with m.Case(StatusWord.STATE_CAUSE):
                        m.d.sync += [held.eq(state | (selected.cause << 8)), held_sel.eq(1)]
                    with m.Case(StatusWord.CYCLE_LO):
                        m.d.sync += [cycle_lo_sel.eq(1), held.eq(self.cycle[32:])]
                    with m.Case(StatusWord.CYCLE_HI):
                        m.d.sync += held_sel.eq(1)
        terms = [held_sel.replicate(32) & held, cycle_lo_sel.replicate(32) & self.cycle[:32]]
        for i, port in enumerate(self.tiles):
            terms.append(memory_sel[i].replicate(32) & port.debug.rdata)
            terms.append(Cat(C(0, 2), pc_sel[i].replicate(30) & port.pc[2:]))
        value = terms[0]
        for term in terms[1:]:
            value = value | term
        m.d.comb += bus.rdata.eq(value)
        return m
