"""Mandelbrot worker: msg[0] = row (0..HEIGHT-1); replies with the row's escape counts packed 4 bits per
column (WIDTH = 32 columns in 4 words), computed in 16.16 fixed point with at most 15 iterations."""

from tessera.os.service_api import Message, Service, reply

WIDTH = 32
HEIGHT = 24
ONE = 1 << 16
LIMIT = 15
STEP_I = 2 * ONE // HEIGHT
STEP_R = 3 * ONE // WIDTH


def fixed_mul(a: int, b: int) -> int:
    """a * b in 16.16 fixed point (operands below 4.0 in magnitude, so 8.8 halves do not overflow)."""
    return (a >> 8) * (b >> 8)


def escape(cr: int, ci: int) -> int:
    zr = 0
    zi = 0
    for n in range(LIMIT):
        zr2 = fixed_mul(zr, zr)
        zi2 = fixed_mul(zi, zi)
        if zr2 + zi2 > 4 * ONE:
            return n
        zi = 2 * fixed_mul(zr, zi) + ci
        zr = zr2 - zi2 + cr
    return LIMIT


class Mandelbrot(Service):
    rows_done: int = 0

    def handle(self, msg: Message) -> None:
        row = msg[0]
        assert 0 <= row < HEIGHT
        ci = row * STEP_I - ONE
        packed0 = 0
        packed1 = 0
        packed2 = 0
        packed3 = 0
        for column in range(WIDTH):
            cr = column * STEP_R - 2 * ONE
            count = escape(cr, ci)
            word = column >> 3
            shift = (column & 7) * 4
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
