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
        # The byte is kept as it was taken and its bits are selected by bits_left, the bit times still on the wire
        # (start bit included): no shift register, so the byte register's inputs are the sender's outputs, which
        # then pack with it (a shift register's inputs are its own multiplexers).
        data = Signal(8)
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        # The level that follows the bit ending now, by bits_left: data bit 0 after the start bit (10), ..., data
        # bit 7 (after 3), the stop bit (after 2), idle (after 1, and wherever bits_left cannot be).
        following = Cat(C(0b111, 3), *(data[10 - left] for left in range(3, 11)), C(0b11111, 5))

        last_cycle_of_bit = timer == 0
        # Idle, or the stop bit's last cycle: a new byte's start bit can follow with no gap.
        m.d.comb += self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & last_cycle_of_bit))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                data.eq(self.i.payload),
                self.tx.eq(0),
                bits_left.eq(10),
                timer.eq(self._divisor - 1),
            ]
        with m.Elif(bits_left != 0):
            with m.If(last_cycle_of_bit):
                m.d.sync += [
                    timer.eq(self._divisor - 1),
                    bits_left.eq(bits_left - 1),
                    self.tx.eq(following.bit_select(bits_left, 1)),
                ]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
