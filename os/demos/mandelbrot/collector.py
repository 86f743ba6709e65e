"""Collector: a JOB (workers, width, height, limit) from the host computes a Mandelbrot picture on the first
`workers` workers (1..7; worker k is pinned to tile k, app.toml). Each worker gets one row at a time (tag = the row;
words: width, limit, the row's imaginary part and the real step, in 16.16 fixed point) and the next free row when it
answers, so fast rows do not wait for slow ones. When every row is in, the collector sends the host one message per
row (tag ROW_BASE + row, the worker's 4 packed words) and then DONE (cycles from the first request to the last
answer, height, workers)."""

from tessera.os.service_api import Array, Message, Service, now, send, send_to

JOB = 0x8000
DONE = 0x8001
ROW_BASE = 0x100
ONE = 1 << 16
MAX_ROWS = 64
MAX_WORKERS = 7


class Collector(Service):
    picture: Array[int, 4 * MAX_ROWS]
    width: int = 0
    height: int = 0
    limit: int = 0
    step_r: int = 0
    step_i: int = 0
    workers: int = 0
    next_row: int = 0
    rows_in: int = 0
    started: int = 0

    def handle(self, msg: Message) -> None:
        if msg.tag == JOB:
            self.start(msg[0], msg[1], msg[2], msg[3])
            return
        row = msg.tag
        assert 0 <= row < self.height, "an answer for a row nobody asked for"
        for index in range(4):
            self.picture[4 * row + index] = msg[index]
        self.rows_in += 1
        if self.next_row < self.height:
            send_to(msg.sender, self.width, self.limit, self.ci(self.next_row), self.step_r, tag=self.next_row)
            self.next_row += 1
        if self.rows_in == self.height:
            self.finish(now() - self.started)

    def start(self, workers: int, width: int, height: int, limit: int) -> None:
        assert 1 <= workers <= MAX_WORKERS and 1 <= height <= MAX_ROWS, "bad job"
        self.workers = workers
        self.width = width
        self.height = height
        self.limit = limit
        self.step_r = 3 * ONE // width
        self.step_i = 2 * ONE // height
        self.rows_in = 0
        self.next_row = 0
        self.started = now()
        for worker in range(min(workers, height)):
            self.dispatch(worker)

    def ci(self, row: int) -> int:
        return row * self.step_i - ONE

    def dispatch(self, worker: int) -> None:
        row = self.next_row
        self.next_row += 1
        ci = self.ci(row)
        send_to(worker + 1, self.width, self.limit, ci, self.step_r, tag=row)  # worker k is pinned to tile k

    def finish(self, cycles: int) -> None:
        for row in range(self.height):
            base = 4 * row
            send("host", self.picture[base], self.picture[base + 1], self.picture[base + 2],
                 self.picture[base + 3], tag=ROW_BASE + row)
        send("host", cycles, self.height, self.workers, tag=DONE)
