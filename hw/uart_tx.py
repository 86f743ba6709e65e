"""UART transmitter, 8N1, one start bit, 8 data bits LSB first, one stop bit."""


from amaranth import C, Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class UartTx(wiring.Component):
    """Sends each byte taken from `i` on the `tx` pin (idle high).

    `divisor` is clock cycles per bit (clock frequency / baud rate, rounded to nearest; the receiver's tolerance
    covers the rounding, see docs/protocol.md). `i.ready` is high only while the line is idle, so a byte is taken
    exactly when its start bit begins. Back-to-back bytes leave no idle time between stop and next start bit.
    """

    i: In(stream.Signature(unsigned(8)))
    tx: Out(1, init=1)

    def __init__(self, divisor: int) -> None:
        if divisor < 2:
            raise ValueError(f"UART divisor {divisor} must be at least 2 clock cycles per bit")
        self._divisor = divisor
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        # shift holds the data bits and the stop bit, sent LSB first; ones shift in behind them, so the line
        # returns to idle by itself. bits_left counts the bit times still on the wire, start bit included.
        shift = Signal(9)
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))

        last_cycle_of_bit = timer == 0
        # Idle, or the stop bit's last cycle: a new byte's start bit can follow with no gap.
        m.d.comb += self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & last_cycle_of_bit))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                shift.eq(Cat(self.i.payload, C(1, 1))),
                self.tx.eq(0),
                bits_left.eq(10),
                timer.eq(self._divisor - 1),
            ]
        with m.Elif(bits_left != 0):
            with m.If(last_cycle_of_bit):
                m.d.sync += [
                    timer.eq(self._divisor - 1),
                    bits_left.eq(bits_left - 1),
                    self.tx.eq(shift[0]),
                    shift.eq(Cat(shift[1:], C(1, 1))),
                ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
