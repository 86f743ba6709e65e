"""A host for cocotb chip tests: speaks the host link protocol (docs/protocol.md) to a TesseraChip.

Two line drivers: `ByteLine` puts bytes straight on the chip's `rx`/`tx` streams (link="bytes", one byte per
cycle at most), `UartLine` drives the `uart_rx`/`uart_tx` pins bit by bit through cocotbext-uart (link="uart").
`ChipHost` sends commands and waits for their replies, acknowledges every pushed MESSAGE frame and keeps the
messages in `inbox` (in arrival order); with `acknowledge = False` it keeps the MESSAGE frames in `held` instead
and acknowledges nothing. `sent_opcodes` records every opcode sent. Not a test module itself.
"""

from __future__ import annotations

import logging
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer

from tessera.os.protocol import AckMessage, Command, Opcode, ProtocolError, Reply, SlipDecoder, Status, parse_reply

CLOCK_NS = 10


class ByteLine:
    """The chip's byte streams: `rx` fed from a queue (valid/ready honoured), `tx` always ready."""

    #: How often the host looks at what arrived: a byte can arrive every cycle.
    poll_cycles = 16

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
        for end in (self._source, self._sink):
            end.log.setLevel(logging.WARNING)  # they log every byte at INFO
        self._pin = dut.uart_rx
        self._baud = baud
        #: How often the host looks at what arrived: once per byte time (10 bits) is enough.
        self.poll_cycles = 10 * round(1e9 / baud / CLOCK_NS)
        self.received: deque[int] = deque()
        self._dut = dut

    def start(self) -> None:
        cocotb.start_soon(self._collect())

    def write(self, data: bytes) -> None:
        self._source.write_nowait(data)

    async def write_bad_stop_bit(self, byte: int) -> None:
        """Once the source is idle, send `byte` with a low stop bit (a framing error), then idle the line again."""
        await self._source.wait()
        bit = Timer(int(1e9 / self._baud), unit="ns")
        for level in [0, *((byte >> k) & 1 for k in range(8)), 0]:
            self._pin.value = level
            await bit
        self._pin.value = 1
        await bit

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
        self.acknowledge = True
        #: MESSAGE frames received while `acknowledge` is False, every copy.
        self.held: list[Reply] = []
        self.sent_opcodes: set[Opcode] = set()

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
        if not self.acknowledge:
            self.held += pushes
            return
        for push in pushes:
            if push.seq != self._last_push:
                self.inbox.append(push.message())
                self._last_push = push.seq
            await self.command(AckMessage(push_seq=push.seq))

    async def command(self, command: Command, timeout_cycles: int = 200_000) -> Reply:
        """Send `command`, wait for its reply (pushed messages meanwhile go to the inbox) and return it."""
        self._seq = (self._seq + 1) % 256
        self.sent_opcodes.add(command.opcode)
        return await self.exchange(command.frame(self._seq), self._seq, timeout_cycles)

    async def exchange(self, wire: bytes, seq: int, timeout_cycles: int = 200_000) -> Reply:
        """Write `wire` (any bytes, e.g. a damaged frame) and return the reply whose `seq` is `seq`."""
        self._replies.pop(seq, None)
        self._line.write(wire)
        pushes: list[Reply] = []
        poll = self._line.poll_cycles
        for _ in range(timeout_cycles // poll):
            await ClockCycles(self._dut.clk, poll)
            pushes += self._drain()
            if seq in self._replies:
                break
        else:
            raise TimeoutError(f"no reply to {wire.hex()} within {timeout_cycles} cycles")
        reply = self._replies.pop(seq)
        await self._take_pushes(pushes)
        return reply

    async def ok(self, command: Command) -> Reply:
        """`command`, which must be answered OK."""
        reply = await self.command(command)
        if reply.status != Status.OK:
            raise ProtocolError(f"{command} answered {Status(reply.status).name} (payload {reply.payload.hex()})")
        return reply

    async def wait_held(self, count: int, timeout_cycles: int = 200_000) -> list[Reply]:
        """With `acknowledge` off: wait until `held` has at least `count` MESSAGE frames; returns `held`."""
        poll = self._line.poll_cycles
        for _ in range(timeout_cycles // poll):
            if len(self.held) >= count:
                return self.held
            await ClockCycles(self._dut.clk, poll)
            await self._take_pushes(self._drain())
        raise TimeoutError(f"{len(self.held)} of {count} MESSAGE frames after {timeout_cycles} cycles")

    async def wait_messages(self, count: int, timeout_cycles: int = 200_000) -> list[tuple[int, int, tuple[int, ...]]]:
        """Wait until the inbox holds at least `count` messages; returns the inbox."""
        waited = 0
        while len(self.inbox) < count:
            if waited > timeout_cycles:
                raise TimeoutError(f"{len(self.inbox)} of {count} messages after {timeout_cycles} cycles: {self.inbox}")
            await ClockCycles(self._dut.clk, self._line.poll_cycles)
            waited += self._line.poll_cycles
            await self._take_pushes(self._drain())
        return self.inbox
