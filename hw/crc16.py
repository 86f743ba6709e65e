"""CRC-16/CCITT-FALSE, two bits per cycle (the host link's frame check, see tessera.os.protocol).

Two bits per cycle instead of a byte: the byte-parallel XOR trees cost ~40 LUT4s, this ~12; a byte takes four
cycles, far below a UART byte time (ten bit times of at least four cycles each).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.os.protocol import CRC_INIT, CRC_POLY

PAIRS_PER_BYTE = 4


def crc16_two_bits(crc, high, low):
    """The CRC after the bits `high` then `low` (MSB-first order): two steps of the bitwise update, unrolled."""
    first = crc[15] ^ high
    second = crc[14] ^ low  # after the first step bit 15 holds crc[14] (the polynomial has no x^15 term)
    shifted = Cat(0, 0, crc[:14])
    taps_first = CRC_POLY << 1
    return Cat(
        *(
            shifted[bit] ^ (first if taps_first >> bit & 1 else 0) ^ (second if CRC_POLY >> bit & 1 else 0)
            for bit in range(16)
        )
    )


class Crc16(wiring.Component):
    """`crc` is the CRC of the bytes digested since the last `clear` (clear wins; undefined before the first).

    A byte is digested while `valid` is held with `data` stable: two bits per cycle, `done` rises after four
    cycles and stays high; `take` (the byte is finished with) makes the next cycle start a new byte. A body followed
    by its own CRC (MSB first) leaves `crc` == 0, which is how the bridge checks a frame without knowing where the
    body ends. `flush` with `valid` digests the CRC's own high byte instead of `data`: that moves the low byte up."""

    data: In(8)
    valid: In(1)
    flush: In(1)
    take: In(1)
    clear: In(1)
    done: Out(1)
    crc: Out(16)

    def elaborate(self, platform) -> Module:
        m = Module()
        pair = Signal(range(PAIRS_PER_BYTE + 1))  # pairs of the current byte digested so far
        # Not reset and 0 at power-up: an iCE40 flip-flop starts at 0, so a register starting at CRC_INIT would be
        # stored inverted, with an inverter LUT per bit on the output.
        value = Signal(16, reset_less=True)
        m.d.comb += [self.done.eq(pair == PAIRS_PER_BYTE), self.crc.eq(value)]
        # The next pair of `data`; with `flush`, the CRC's own top bits, so the CRC only shifts (by a byte in four
        # cycles: its low byte moves up, which is how the bridge sends both CRC bytes from `crc[8:]`).
        bits = Mux(self.flush, value[14:], self.data.word_select(~pair[:2], 2))
        with m.If(self.take | self.clear):
            m.d.sync += pair.eq(0)
        with m.Elif(self.valid & ~self.done):
            m.d.sync += [pair.eq(pair + 1), value.eq(crc16_two_bits(value, bits[1], bits[0]))]
        with m.If(self.clear):
            m.d.sync += value.eq(CRC_INIT)
        return m
