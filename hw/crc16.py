"""CRC-16/CCITT-FALSE, one byte per cycle (the host link's frame check, see tessera.os.protocol)."""

from amaranth import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.os.protocol import CRC_INIT, crc16_update


def _step_matrix() -> list[tuple[list[int], list[int]]]:
    """The byte step is linear over GF(2): for each output bit, the CRC bits and data bits that XOR into it."""
    columns = [crc16_update(1 << bit, 0) for bit in range(16)]  # effect of each CRC bit alone
    data_columns = [crc16_update(0, 1 << bit) for bit in range(8)]
    return [
        ([b for b in range(16) if columns[b] >> out & 1], [b for b in range(8) if data_columns[b] >> out & 1])
        for out in range(16)
    ]


def crc16_next(crc, byte):
    """The CRC after one more byte, as one XOR tree per output bit (built from the table, not by unrolling the
    bitwise loop, whose expression would grow exponentially)."""
    return Cat(*(_xor([crc[b] for b in crc_bits] + [byte[b] for b in data_bits]) for crc_bits, data_bits in _step_matrix()))


def _xor(terms):
    value = terms[0]
    for term in terms[1:]:
        value = value ^ term
    return value


class Crc16(wiring.Component):
    """`crc` is the CRC of the bytes given with `en` since the last `clear` (clear wins over en).

    A body followed by its own CRC (MSB first) leaves `crc` == 0, which is how the bridge checks a frame
    without knowing where the body ends."""

    data: In(8)
    en: In(1)
    clear: In(1)
    crc: Out(16, init=CRC_INIT)

    def elaborate(self, platform) -> Module:
        m = Module()
        with m.If(self.clear):
            m.d.sync += self.crc.eq(CRC_INIT)
        with m.Elif(self.en):
            m.d.sync += self.crc.eq(crc16_next(self.crc, self.data))
        return m
