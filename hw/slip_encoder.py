"""SLIP (RFC 1055) send side: byte stuffing and frame ends (see tessera.os.protocol)."""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tessera.os.protocol import END, ESC, ESC_END, ESC_ESC

#: A symbol to send: a body byte, or (end = 1) an END delimiter.
SlipOut = data.StructLayout({"data": 8, "end": 1})


class SlipEncoder(wiring.Component):
    """SlipOut stream in, byte stream out. END/ESC body bytes become two bytes (ESC, then ESC_END/ESC_ESC): the
    input symbol is taken when its second byte goes out. No buffering beyond that one state bit."""

    i: In(stream.Signature(SlipOut))
    o: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform) -> Module:
        m = Module()
        second = Signal()  # the ESC of a two-byte sequence has gone out
        byte = self.i.payload.data
        needs_escape = ~self.i.payload.end & ((byte == END) | (byte == ESC))

        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready & (~needs_escape | second)),
        ]
        with m.If(self.i.payload.end):
            m.d.comb += self.o.payload.eq(END)
        with m.Elif(needs_escape):
            m.d.comb += self.o.payload.eq(Mux(second, Mux(byte == END, ESC_END, ESC_ESC), ESC))
        with m.Else():
            m.d.comb += self.o.payload.eq(byte)
        with m.If(self.o.valid & self.o.ready & needs_escape):
            m.d.sync += second.eq(~second)
        return m
