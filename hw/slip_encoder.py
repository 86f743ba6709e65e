"""SLIP (RFC 1055) send side: byte stuffing and frame ends (see tessera.os.protocol)."""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tessera.os.protocol import END, ESC, ESC_END, ESC_ESC

#: A symbol to send: a body byte, or (end = 1) an END delimiter.
SlipOut = data.StructLayout({"data": 8, "end": 1})


class SlipEncoder(wiring.Component):
    """SlipOut stream in, byte stream out. END/ESC body bytes become two bytes (ESC, then ESC_END/ESC_ESC).

    One symbol is held in a register: `i.ready` is high while the register is empty and depends on nothing else,
    so the sender's path to its own state does not run through the escape check (the host link's critical path
    otherwise). The held symbol leaves when its last byte goes out; the next one can be taken in the cycle after.
    """

    i: In(stream.Signature(SlipOut))
    o: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform) -> Module:
        m = Module()
        held = Signal(SlipOut)
        full = Signal()
        second = Signal()  # the ESC of a two-byte sequence has gone out
        byte = held.data
        needs_escape = ~held.end & ((byte == END) | (byte == ESC))

        m.d.comb += [self.i.ready.eq(~full), self.o.valid.eq(full)]
        with m.If(self.i.valid & ~full):
            m.d.sync += [held.eq(self.i.payload), full.eq(1)]
        with m.If(held.end):
            m.d.comb += self.o.payload.eq(END)
        with m.Elif(needs_escape):
            m.d.comb += self.o.payload.eq(Mux(second, Mux(byte == END, ESC_END, ESC_ESC), ESC))
        with m.Else():
            m.d.comb += self.o.payload.eq(byte)
        with m.If(self.o.valid & self.o.ready):
            with m.If(needs_escape):
                m.d.sync += second.eq(~second)
            with m.If(~needs_escape | second):
                m.d.sync += full.eq(0)
        return m
