"""A stand-in for the chip top (`tessera_chip`) with the same host-link ports, for the virtual board's tests.

Until hw/chip.py exists, the virtual board and the host links are tested against this small component. It keeps
the port contract of the chip top in `link="bytes"` mode (byte streams `rx` host->chip and `tx` chip->host) and
does something a test can predict with `StandinModel`:
- byte 0x00 is a query: the reply is the number of bytes received before it since reset (mod 256);
- any other byte b is answered with b + 1 (mod 256).
A FIFO between the two sides lets the host stream bytes faster than it reads the replies (back-pressure path).
With `io=True` it also has the board I/O ports of a chip with an I/O node: `leds: Out(IO_PINS)` shows the low bits
of the last byte received XOR the `buttons: In(IO_PINS)` levels (`StandinModel.leds`).
"""

# No `from __future__ import annotations`: Amaranth reads the signature annotations as objects.

from amaranth import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

QUERY = 0x00
IO_PINS = 4


class StandinChip(wiring.Component):
    """Byte-stream stand-in for the chip top; only `link="bytes"` exists (the C++ harness needs nothing else)."""

    def __init__(self, *, link: str = "bytes", fifo_depth: int = 16, io: bool = False) -> None:
        if link != "bytes":
            raise ValueError(f"stand-in chip supports only link='bytes', not {link!r}")
        self._fifo_depth = fifo_depth
        self._io = io
        members = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8))}
        if io:
            members |= {"leds": Out(IO_PINS), "buttons": In(IO_PINS)}
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.replies = replies = fifo.SyncFIFOBuffered(width=8, depth=self._fifo_depth)
        received = Signal(8)
        m.d.comb += [
            self.rx.ready.eq(replies.w_rdy),
            replies.w_en.eq(self.rx.valid),
            self.tx.payload.eq(replies.r_data),
            self.tx.valid.eq(replies.r_rdy),
            replies.r_en.eq(self.tx.ready),
        ]
        with m.If(self.rx.payload == QUERY):
            m.d.comb += replies.w_data.eq(received)
        with m.Else():
            m.d.comb += replies.w_data.eq(self.rx.payload + 1)
        with m.If(self.rx.valid & self.rx.ready):
            m.d.sync += received.eq(received + 1)
        if self._io:
            last = Signal(IO_PINS)
            with m.If(self.rx.valid & self.rx.ready):
                m.d.sync += last.eq(self.rx.payload)
            m.d.comb += self.leds.eq(last ^ self.buttons)
        return m


class StandinModel:
    """Reference model of StandinChip: the replies to a byte sequence, counting from the last reset."""

    def __init__(self) -> None:
        self.received = 0
        self.last = 0

    def leds(self, buttons: int) -> int:
        """The stand-in's LEDs (io=True) with the buttons at `buttons`."""
        return (self.last ^ buttons) & ((1 << IO_PINS) - 1)

    def reply(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            out.append(self.received if byte == QUERY else (byte + 1) % 256)
            self.received = (self.received + 1) % 256
            self.last = byte
        return bytes(out)
