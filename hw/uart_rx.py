"""UART receiver, 8N1, sampling each bit in its middle."""


from amaranth import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    """Receives bytes from the `rx` pin (asynchronous; synchronised here) onto the `o` stream.

    `divisor` is clock cycles per bit. A falling edge starts a byte; the start bit is checked half a bit later
    (a glitch shorter than that is ignored), then every bit is sampled one bit time apart, i.e. in its middle.
    - Bad stop bit (line low where the stop bit should be high): the byte is dropped and `framing_error` pulses
      for one cycle; the receiver then waits for the line to go high before it looks for the next start bit
      (so a held-low line, a "break", counts once).
    - Overrun: a byte's data bits arrive while the previous one still waits on `o` (`o.valid` when one of them is
      sampled): the new byte is dropped and `overrun` pulses at its stop bit. `o` never loses a byte it has shown.
      (`o.payload` is the shift register itself, so a byte must be taken before the next one's first data bit,
      ~1.5 bit times after that byte's start bit: a copy register would cost 8 logic cells.)
    """

    rx: In(1)
    o: Out(stream.Signature(unsigned(8)))
    framing_error: Out(1)
    overrun: Out(1)

    def __init__(self, divisor: int) -> None:
        if divisor < 4:
            raise ValueError(f"UART divisor {divisor} must be at least 4 clock cycles per bit to sample mid-bit")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(self._divisor))
        bits_left = Signal(range(9))
        shift = Signal(8)
        lost = Signal()  # a data bit of this byte came while `o` still showed the previous one
        m.d.comb += self.o.payload.eq(shift)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        m.d.sync += [self.framing_error.eq(0), self.overrun.eq(0)]

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"  # shorter than half a bit: a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self._divisor - 1), bits_left.eq(8), lost.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(self._divisor - 1), bits_left.eq(bits_left - 1)]
                    with m.If(self.o.valid):
                        m.d.sync += lost.eq(1)
                    with m.Else():
                        m.d.sync += shift.eq((shift >> 1) | (line << 7))
                    with m.If(bits_left == 1):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~line):
                    m.d.sync += self.framing_error.eq(1)
                    m.next = "BREAK"
                with m.Else():
                    with m.If(lost):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += self.o.valid.eq(1)
                    m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m
