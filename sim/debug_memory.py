"""A block RAM behind the serial debug port's `DebugTarget`: a tile's memory as the host sees it, without a core
(the stand-in tiles of the host-bridge tests, the debug port's own tests)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from tessera.hw.debug_port import DebugPortSignature
from tessera.hw.debug_target import DebugTarget

__all__ = ["DebugMemory"]


class DebugMemory(wiring.Component):
    """`2**addr_bits` words reached through `port` (hw/debug_port.py). While `locked` is 1 (a stand-in for a running
    core) writes are dropped, as a Tile drops them. `memory` is the block RAM (testbenches read `memory.data`)."""

    def __init__(self, *, addr_bits: int) -> None:
        self._addr_bits = addr_bits
        self.memory = memory.Memory(shape=32, depth=1 << addr_bits, init=[])
        super().__init__({"port": In(DebugPortSignature()), "locked": In(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.target = target = DebugTarget(addr_bits=self._addr_bits)
        m.submodules.memory = self.memory
        wiring.connect(m, wiring.flipped(self.port), target.port)
        read, write = self.memory.read_port(domain="sync"), self.memory.write_port(granularity=8)
        bus = target.bus
        m.d.comb += [
            read.addr.eq(bus.addr),
            read.en.eq(bus.re),
            bus.rdata.eq(read.data),
            write.addr.eq(bus.addr),
            write.data.eq(bus.wdata),
            write.en.eq((bus.we & ~self.locked).replicate(4) & bus.wmask),
        ]
        return m
