"""SLIP (RFC 1055) receive side: undoes byte stuffing and marks frame ends (see tessera.os.protocol)."""

from amaranth import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tessera.os.protocol import END, ESC, ESC_END, ESC_ESC

#: A decoded symbol: a body byte, or (end = 1) the end of a frame, with `error` = the frame's line coding was
#: broken (a bad escape, or a UART error reported on `line_error`) since the previous end.
SlipSymbol = data.StructLayout({"data": 8, "end": 1, "error": 1})


class SlipDecoder(wiring.Component):
    """Byte stream in, SlipSymbol stream out; ESC bytes are consumed without output. Passes `ready` through
    (no buffering), so a stalled consumer stalls the UART, whose overrun then reaches `line_error`."""

    i: In(stream.Signature(unsigned(8)))
    line_error: In(1)
    o: Out(stream.Signature(SlipSymbol))

    def elaborate(self, platform) -> Module:
        m = Module()
        escaped = Signal()
        broken = Signal()
        byte = self.i.payload
        is_end = byte == END
        is_esc = byte == ESC

        m.d.comb += [
            self.o.valid.eq(self.i.valid & (is_end | escaped | ~is_esc)),
            self.i.ready.eq(self.o.ready | (is_esc & ~escaped & ~is_end)),
            self.o.payload.end.eq(is_end),
            self.o.payload.data.eq(byte),
        ]
        bad_escape = escaped & ~is_end & (byte != ESC_END) & (byte != ESC_ESC)
        with m.If(escaped & (byte == ESC_END)):
            m.d.comb += self.o.payload.data.eq(END)
        with m.If(escaped & (byte == ESC_ESC)):
            m.d.comb += self.o.payload.data.eq(ESC)
        # An END right after ESC ends the frame as broken.
        m.d.comb += self.o.payload.error.eq(broken | self.line_error | (escaped & is_end))

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += escaped.eq(is_esc & ~escaped)
            with m.If(is_end):
                m.d.sync += broken.eq(0)
            with m.Elif(bad_escape):
                m.d.sync += broken.eq(1)
        with m.If(self.line_error & ~(self.i.valid & self.i.ready & is_end)):
            m.d.sync += broken.eq(1)
        return m
