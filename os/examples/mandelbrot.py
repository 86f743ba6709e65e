"""Mandelbrot rows: a request (width, limit, ci, step) asks for one row of `width` points cr = -2 + column * step,
at imaginary part ci (16.16 fixed point, as the words are); the reply (same tag) packs each column's escape count
(0..limit, limit <= 15) into 4 bits, 8 columns per word, 4 words (width <= 32). The sender does the divisions
(step = 3 / width, ci = row * 2 / height - 1 for a picture of -2..1 x -1..1), so this fits a 1 KiB tile. The
workers of demo 3 (os/demos/mandelbrot) run this file; tessera.os.demo_runs.mandelbrot_reference is the same
computation in CPython."""

from tessera.os.service_api import Message, Service, reply

ONE = 1 << 16


def escape(cr: int, ci: int, limit: int) -> int:
    zr = 0
    zi = 0
    for n in range(limit):
        # 16.16 products from the 8.8 halves: the operands stay below 4.0 in magnitude, so nothing overflows
        hr = zr >> 8
        hi = zi >> 8
        zr2 = hr * hr
        zi2 = hi * hi
        if zr2 + zi2 > 4 * ONE:
            return n
        zi = 2 * hr * hi + ci
        zr = zr2 - zi2 + cr
    return limit


class Worker(Service):
    def handle(self, msg: Message) -> None:
        width = msg[0]
        limit = msg[1]
        ci = msg[2]
        step = msg[3]
        assert 0 < width <= 32 and 0 < limit <= 15, "bad request"
        packed0 = 0
        packed1 = 0
        packed2 = 0
        packed3 = 0
        cr = -2 * ONE
        for column in range(width):
            count = escape(cr, ci, limit)
            cr += step
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
        reply(packed0, packed1, packed2, packed3)
