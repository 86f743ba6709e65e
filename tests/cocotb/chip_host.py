"""A host for cocotb chip tests: speaks the host link protocol (docs/protocol.md) to a TesseraChip.

Two line drivers: `ByteLine` puts bytes straight on the chip's `rx`/`tx` streams (link="bytes", one byte per
cycle at most), `UartLine` drives the `uart_rx`/`uart_tx` pins bit by bit through cocotbext-uart (link="uart").
`ChipHost` sends commands and waits for their replies, acknowledges every pushed MESSAGE frame and keeps the
messages in `inbox` (in arrival order). Not a test module itself.
"""

from __future__ import annotations

from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from tessera.os.protocol import AckMessage, Command, ProtocolError, Reply, SlipDecoder, Status, parse_reply

CLOCK_NS = 10


class ByteLine:
    """The chip's byte streams: `rx` fed from a queue (valid/ready honoured), `tx` always ready."""

    def __init__(self, dut) -> None:
        self._dut = dut
        self._outgoing: deque[int] = deque()
        self.received: deque[int] = deque()
        dut.rx__valid.value = 0
        dut.rx__payload.value = 0
        dut.tx__ready.value = 1

    def start(self) -> None:
        cocotb.start_soon(self._run())

    def write(self, data: bytes) -> None:
        self._outgoing.extend(data)

    async def _run(self) -> None:
        dut = self._dut
        taken = False
        while True:
            await RisingEdge(dut.clk)
            if taken:
                self._outgoing.popleft()
            if self._outgoing:
                dut.rx__valid.value = 1
                dut.rx__payload.value = self._outgoing[0]
            else:
                dut.rx__valid.value = 0
            await ReadOnly()
            taken = bool(self._outgoing) and bool(dut.rx__ready.value)
            if dut.tx__valid.value:
                self.received.append(int(dut.tx__payload.value))


class UartLine:
    """The chip's UART pins, driven and read bit by bit by cocotbext-uart at `baud`."""

    def __init__(self, dut, baud: int) -> None:
        from cocotbext.uart import UartSink, UartSource

        self._source = UartSource(dut.uart_rx, baud=baud, bits=8)
        self._sink = UartSink(dut.uart_tx, baud=baud, bits=8)
        self.received: deque[int] = deque()
        self._dut = dut

    def start(self) -> None:
        cocotb.start_soon(self._collect())

    def write(self, data: bytes) -> None:
        self._source.write_nowait(data)

    async def _collect(self) -> None:
        while True:
            data = await self._sink.read()
            self.received.extend(data)


class ChipHost:
    """Commands with replies, and the messages the chip pushes to the host."""

    def __init__(self, dut, line: ByteLine | UartLine) -> None:
        self._dut = dut
        self._line = line
        self._decoder = SlipDecoder()
        self._seq = 0
        self._replies: dict[int, Reply] = {}
        self._last_push: int | None = None
        #: Messages for the host: (source, tag, words), in arrival order, each once.
        self.inbox: list[tuple[int, int, tuple[int, ...]]] = []

    async def start(self) -> None:
        Clock(self._dut.clk, CLOCK_NS, unit="ns").start()
        self._dut.rst.value = 1
        await ClockCycles(self._dut.clk, 4)
        self._dut.rst.value = 0
        self._line.start()
        await ClockCycles(self._dut.clk, 2)

    def _drain(self) -> list[Reply]:
        """Frames the chip sent since the last call (replies stored, MESSAGE frames returned)."""
        data = bytes(self._line.received)
        self._line.received.clear()
        pushes = []
        for frame in self._decoder.feed(data):
            reply = parse_reply(frame.body)
            if reply.is_message:
                pushes.append(reply)
            else:
                self._replies[reply.seq] = reply
        return pushes

    async def _take_pushes(self, pushes: list[Reply]) -> None:
        for push in pushes:
            if push.seq != self._last_push:
                self.inbox.append(push.message())
                self._last_push = push.seq
            await self.command(AckMessage(push_seq=push.seq))

    async def command(self, command: Command, timeout_cycles: int = 200_000) -> Reply:
        """Send `command`, wait for its reply (pushed messages meanwhile go to the inbox) and return it."""
        self._seq = (self._seq + 1) % 256
        seq = self._seq
        self._replies.pop(seq, None)
        self._line.write(command.frame(seq))
        pushes: list[Reply] = []
        for _ in range(timeout_cycles // 16):
            await ClockCycles(self._dut.clk, 16)
            pushes += self._drain()
            if seq in self._replies:
                break
        else:
            raise TimeoutError(f"no reply to {command} within {timeout_cycles} cycles")
        reply = self._replies.pop(seq)
        await self._take_pushes(pushes)
        return reply

    async def ok(self, command: Command) -> Reply:
        """`command`, which must be answered OK."""
        reply = await self.command(command)
        if reply.status != Status.OK:
            raise ProtocolError(f"{command} answered {Status(reply.status).name} (payload {reply.payload.hex()})")
        return reply

    async def wait_messages(self, count: int, timeout_cycles: int = 200_000) -> list[tuple[int, int, tuple[int, ...]]]:
        """Wait until the inbox holds at least `count` messages; returns the inbox."""
        waited = 0
        while len(self.inbox) < count:
            if waited > timeout_cycles:
                raise TimeoutError(f"{len(self.inbox)} of {count} messages after {timeout_cycles} cycles: {self.inbox}")
            await ClockCycles(self._dut.clk, 16)
            waited += 16
            await self._take_pushes(self._drain())
        return self.inbox
