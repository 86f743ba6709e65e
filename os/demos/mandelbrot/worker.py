"""Mandelbrot worker: a request (row, width, height, limit) asks for one row of a width x height picture of the
square -2..1 x -1..1; the reply (same tag) packs each column's escape count (0..limit, limit <= 15) into 4 bits,
8 columns per word, 4 words (width <= 32). Arithmetic is 16.16 fixed point."""

from tessera.os.service_api import Message, Service, reply

ONE = 1 << 16


def fixed_mul(a: int, b: int) -> int:
    """a * b in 16.16 fixed point (operands below 4.0 in magnitude, so 8.8 halves do not overflow)."""
    return (a >> 8) * (b >> 8)


def escape(cr: int, ci: int, limit: int) -> int:
    zr = 0
    zi = 0
    for n in range(limit):
        zr2 = fixed_mul(zr, zr)
        zi2 = fixed_mul(zi, zi)
        if zr2 + zi2 > 4 * ONE:
            return n
        zi = 2 * fixed_mul(zr, zi) + ci
        zr = zr2 - zi2 + cr
    return limit


class Worker(Service):
    rows_done: int = 0

    def handle(self, msg: Message) -> None:
        row = msg[0]
        width = msg[1]
        height = msg[2]
        limit = msg[3]
        assert 0 <= row < height and 0 < width <= 32 and 0 < limit <= 15, "bad request"
        ci = row * (2 * ONE // height) - ONE
        step = 3 * ONE // width
        packed0 = 0
        packed1 = 0
        packed2 = 0
        packed3 = 0
        for column in range(width):
            count = escape(column * step - 2 * ONE, ci, limit)
            shift = (column & 7) * 4
            word = column >> 3
            if word == 0:
                packed0 |= count << shift
            elif word == 1:
                packed1 |= count << shift
            elif word == 2:
                packed2 |= count << shift
            else:
                packed3 |= count << shift
        self.rows_done += 1
        reply(packed0, packed1, packed2, packed3)
