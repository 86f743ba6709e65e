"""The tile side of the serial debug port for cores without shift registers of their own (the parallel and the
nibble-serial core): the port's word and address registers in front of a word-wide memory port."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.core import MemoryBusSignature
from tessera.hw.debug_port import WORD_BITS, DebugPortSignature

__all__ = ["DebugTarget"]


class DebugTarget(wiring.Component):
    """Parameter: `addr_bits` (word address width). `port` as `tessera.sim.debug_port_model` describes it; `bus`
    reaches the memory (all four bytes written; read data the cycle after `re`, taken into the word register then).
    The target itself never looks at the core's state: whoever owns the memory ignores `bus` while the core runs."""

    def __init__(self, *, addr_bits: int) -> None:
        self._addr_bits = addr_bits
        super().__init__({"port": In(DebugPortSignature()), "bus": Out(MemoryBusSignature(addr_bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        port, bus = self.port, self.bus
        word = Signal(WORD_BITS)
        address = Signal(self._addr_bits)
        loading = Signal()
        m.d.sync += loading.eq(port.re)
        with m.If(loading):
            m.d.sync += word.eq(bus.rdata)
        with m.Elif(port.shift):
            m.d.sync += [word.eq(Cat(word[1:], port.data_in)), address.eq(Cat(address[1:], port.addr_in))]
        m.d.comb += [
            bus.addr.eq(address),
            bus.re.eq(port.re),
            bus.we.eq(port.we),
            bus.wdata.eq(word),
            bus.wmask.eq(0b1111),
            port.data_out.eq(word[0]),
        ]
        return m
