"""Decodes the host bridge's tile bus into one port per tile (the chip top wires these to the Tiles)."""

from amaranth import Array, C, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import TileState
from tessera.hw.debug_port import DebugPortSignature
from tessera.hw.debug_serializer import DebugSerializer
from tessera.hw.tile_bus import TileBusSignature
from tessera.os.protocol import StatusWord


def TilePortSignature() -> wiring.Signature:
    """One tile's port, seen from the fanout: members named like `Tile`'s (debug, run, halt, reset_pc, state,
    cause, pc), plus `config_we`/`config_index`/`config_data` for the tile's configuration registers."""
    return wiring.Signature(
        {
            "debug": Out(DebugPortSignature()),
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

    Memory words travel over the tiles' serial debug ports: one `DebugSerializer` serves the selected tile, so a
    tile adds one read-data bit to the fanout's multiplexer, not 32 (a memory word's bits travel
    through the bridge's word register: the bus's `word_shift`/`word_in`). Status words: STATE_CAUSE, PC, CYCLE_LO/HI
    (the high half is captured when the low half is read, so a STATUS reply holds one consistent 64-bit value),
    RETIRED/MESSAGES_IN/MESSAGES_OUT read 0 here (the counters live in the tile nodes; the chip top ORs them into
    the read data, hw/chip.py). Status read data arrives the cycle after `re` with `done`; pc and the low cycle
    half are sampled in that cycle, state/cause and the high half at `re`. All read data is 0 outside `done`."""

    def __init__(self, *, tile_count: int, addr_bits: int) -> None:
        self._tile_count = tile_count
        self._addr_bits = addr_bits
        super().__init__(
            {
                "bus": In(TileBusSignature(tile_count, addr_bits)),
                "tiles": Out(TilePortSignature()).array(tile_count),
                "cycle": In(64),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        selected = Array(self.tiles)[bus.tile]
        m.submodules.serializer = serializer = DebugSerializer(addr_bits=self._addr_bits)
        serial = serializer.port
        m.d.comb += [
            serializer.addr.eq(bus.addr),
            serializer.wbit.eq(bus.wdata[0]),
            serializer.re.eq(bus.re & ~bus.space),
            serializer.we.eq(bus.we),
        ]
        data_out = []
        for index, port in enumerate(self.tiles):
            chosen = bus.tile == index
            m.d.comb += [
                port.debug.shift.eq(chosen & serial.shift),
                port.debug.data_in.eq(serial.data_in),
                port.debug.addr_in.eq(serial.addr_in),
                port.debug.re.eq(chosen & serial.re),
                port.debug.we.eq(chosen & serial.we),
                port.run.eq(chosen & bus.run),
                port.halt.eq(chosen & bus.halt),
                port.reset_pc.eq(chosen & bus.reset_pc),
                port.config_we.eq(chosen & bus.config_we),
                port.config_index.eq(bus.config_index),
                port.config_data.eq(bus.wdata),
            ]
            data_out.append(chosen & port.debug.data_out)
        m.d.comb += serial.data_out.eq(Cat(data_out).any())
        state = selected.state
        m.d.comb += bus.busy.eq((state == TileState.RUNNING) | (state == TileState.SLEEPING))

        # Status read data as an AND-OR of one-hot selects registered at `re` (two inputs per LUT; a binary multiplexer
        # tree measured about the same at 8 tiles and worse at 2): a tile's pc, the low cycle half, or `held`. The
        # selects are 0 except in the cycle after `re`. A pc is always a multiple of 4 (docs/isa.md): its two low bits
        # read 0 without taking part. `held` is loaded at a STATE_CAUSE read with the selected tile's state/cause and at
        # a CYCLE_LO read with the high cycle half, kept for the CYCLE_HI read that follows it (STATUS reads the words
        # in order): one register whose every flip-flop has a LUT in front (a plain copy of the counter would sit alone
        # in its logic cell).
        index = bus.addr[:3]
        pc_sel = Signal(self._tile_count)
        cycle_lo_sel = Signal()
        held_sel = Signal()
        status_done = Signal()
        held = Signal(32)
        m.d.sync += [pc_sel.eq(0), cycle_lo_sel.eq(0), held_sel.eq(0), status_done.eq(bus.re & bus.space)]
        with m.If(bus.re & bus.space):
            for i in range(self._tile_count):
                m.d.sync += pc_sel[i].eq((bus.tile == i) & (index == StatusWord.PC))
            with m.Switch(index):
                with m.Case(StatusWord.STATE_CAUSE):
                    m.d.sync += [held.eq(state | (selected.cause << 8)), held_sel.eq(1)]
                with m.Case(StatusWord.CYCLE_LO):
                    m.d.sync += [cycle_lo_sel.eq(1), held.eq(self.cycle[32:])]
                with m.Case(StatusWord.CYCLE_HI):
                    m.d.sync += held_sel.eq(1)
        terms = [held_sel.replicate(32) & held, cycle_lo_sel.replicate(32) & self.cycle[:32]]
        for i, port in enumerate(self.tiles):
            terms.append(Cat(C(0, 2), pc_sel[i].replicate(30) & port.pc[2:]))
        value = terms[0]
        for term in terms[1:]:
            value = value | term
        m.d.comb += [
            bus.rdata.eq(value),
            bus.done.eq(status_done | serializer.done),
            bus.word_in.eq(serializer.rbit),
            bus.word_shift.eq(serializer.shift),
        ]
        return m
