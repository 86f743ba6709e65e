"""Reference model of the host bridge's command semantics, byte in, byte out (docs/protocol.md).

`BridgeModel` consumes the host's bytes and produces the chip's bytes exactly as `tessera.hw.host_bridge.HostBridge`
must, against any `TileArray` (the tests use `FakeTileArray`; the virtual chip can plug in the golden model).
The order of checks in `_execute` is the contract: the first failing check names the reply's status.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tessera.firmware.isa import TileState
from tessera.os.protocol import (
    CRC_BYTES,
    HEADER_BYTES,
    PROTOCOL_VERSION,
    STATUS_WORDS,
    ChipInfo,
    ConfigRegister,
    Opcode,
    RawFrame,
    SlipDecoder,
    Status,
    build_reply,
    crc16,
    max_body,
    slip_encode,
)

#: Commands that address a tile (and so check the tile number).
TILE_COMMANDS = frozenset(
    {
        Opcode.WRITE_MEM,
        Opcode.READ_MEM,
        Opcode.RESET,
        Opcode.HALT,
        Opcode.RUN,
        Opcode.STATUS,
        Opcode.SET_PERMISSIONS,
        Opcode.SET_SUPERVISOR,
        Opcode.SET_WATCHDOG,
        Opcode.SEND,  # the destination must be a tile or the I/O node (ChipInfo.send_destinations)
    }
)
CONFIG_COMMANDS = {
    Opcode.SET_PERMISSIONS: ConfigRegister.PERMISSIONS,
    Opcode.SET_SUPERVISOR: ConfigRegister.SUPERVISOR,
    Opcode.SET_WATCHDOG: ConfigRegister.WATCHDOG,
}
HOST_COMMANDS = frozenset(Opcode) - {Opcode.MESSAGE}


class TileArray(Protocol):
    """What the bridge can do to tiles (the hardware's tile bus, one call per bus operation)."""

    def busy(self, tile: int) -> bool: ...  # RUNNING or SLEEPING: memory is not reachable
    def read_word(self, tile: int, word_address: int) -> int: ...
    def write_word(self, tile: int, word_address: int, value: int) -> None: ...
    def read_status_word(self, tile: int, index: int) -> int: ...
    def run(self, tile: int) -> None: ...
    def halt(self, tile: int) -> None: ...
    def reset(self, tile: int) -> None: ...
    def write_config(self, tile: int, register: ConfigRegister, value: int) -> None: ...


class Network(Protocol):
    def try_send(self, dest: int, tag: int, words: tuple[int, ...]) -> tuple[Status, bytes]:
        """OK, NET_BUSY (nothing sent) or NET_FAULT with the cause byte."""
        ...


@dataclass
class FakeTile:
    """A stand-in tile: memory and status that only the bridge changes (run/halt/reset move `state`)."""

    mem_words: int
    pc: int = 0
    state: TileState = TileState.HALTED
    cause: int = 0
    retired: int = 0
    messages_in: int = 0
    messages_out: int = 0
    memory: list[int] = field(default_factory=list)
    config: dict[ConfigRegister, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.memory:
            self.memory = [0] * self.mem_words


class FakeTileArray:
    """TileArray over FakeTiles; `cycle` stands for the chip-wide counter."""

    def __init__(self, tile_count: int, mem_words: int) -> None:
        self.tiles = [FakeTile(mem_words) for _ in range(tile_count)]
        self.cycle = 0

    def busy(self, tile: int) -> bool:
        return self.tiles[tile].state in (TileState.RUNNING, TileState.SLEEPING)

    def read_word(self, tile: int, word_address: int) -> int:
        return self.tiles[tile].memory[word_address]

    def write_word(self, tile: int, word_address: int, value: int) -> None:
        self.tiles[tile].memory[word_address] = value

    def read_status_word(self, tile: int, index: int) -> int:
        t = self.tiles[tile]
        cycle_lo, cycle_hi = self.cycle & 0xFFFF_FFFF, self.cycle >> 32
        words = (t.state | (t.cause << 8), t.pc, cycle_lo, cycle_hi, t.retired, t.messages_in, t.messages_out)
        return words[index]

    def run(self, tile: int) -> None:
        self.tiles[tile].state = TileState.RUNNING

    def halt(self, tile: int) -> None:
        self.tiles[tile].state = TileState.HALTED

    def reset(self, tile: int) -> None:
        t = self.tiles[tile]
        t.state, t.pc, t.cause = TileState.HALTED, 0, 0

    def write_config(self, tile: int, register: ConfigRegister, value: int) -> None:
        self.tiles[tile].config[register] = value


class FakeNetwork:
    """Records what the host sent; `accepting = False` makes every send NET_BUSY, `fault_cause` a NET_FAULT."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int, tuple[int, ...]]] = []
        self.accepting = True
        self.fault_cause: int | None = None

    def try_send(self, dest: int, tag: int, words: tuple[int, ...]) -> tuple[Status, bytes]:
        if self.fault_cause is not None:
            return Status.NET_FAULT, bytes([self.fault_cause])
        if not self.accepting:
            return Status.NET_BUSY, b""
        self.sent.append((dest, tag, words))
        return Status.OK, b""


def _le_words(data: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4))


def _words_le(words: Iterable[int]) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


class BridgeModel:
    """The bridge's observable behaviour. Feed host bytes with `feed`, get chip bytes back; `deliver` a message
    from the network to the host (pushed as a MESSAGE frame once nothing is pending)."""

    def __init__(self, info: ChipInfo, tiles: TileArray, network: Network) -> None:
        self.info = info
        self.tiles = tiles
        self.network = network
        self.max_body = max_body(info.max_words)
        self._decoder = SlipDecoder(self.max_body)
        self._last: tuple[int, int] | None = None  # (seq, status) of the last executed command
        self._inbox: deque[tuple[int, int, tuple[int, ...]]] = deque()
        self._pending: tuple[int, int, tuple[int, ...]] | None = None
        self._pending_sent = False
        self._push_seq = 0

    # --- host side --------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for raw in self._decoder.feed(data):
            out += slip_encode(self.execute(raw))
            out += self._push()
        return bytes(out)

    def line_error(self) -> None:
        """A UART framing error or overrun during the frame in progress."""
        self._decoder.line_error()

    def deliver(self, src: int, tag: int, words: tuple[int, ...]) -> bytes:
        """A message for the host arrives from the network; returns any frame pushed at once."""
        self._inbox.append((src, tag, words))
        return self._push()

    def _push(self) -> bytes:
        if self._pending is None and self._inbox:
            self._pending = self._inbox.popleft()
            self._pending_sent = False
        if self._pending is None or self._pending_sent:
            return b""
        self._pending_sent = True
        src, tag, words = self._pending
        payload = tag.to_bytes(2, "little") + _words_le(words)
        return slip_encode(build_reply(Opcode.MESSAGE, self._push_seq, src, Status.OK, payload))

    # --- one frame --------------------------------------------------------------------------------------

    def execute(self, raw: RawFrame) -> bytes:
        """The sealed reply body for one received frame."""
        body = raw.body
        header = (body + bytes(HEADER_BYTES))[:HEADER_BYTES]
        first, seq, tile = header
        link_status = self._link_check(raw)
        if link_status is not None:
            return build_reply(first & 0x1F, seq, tile, link_status, version=first >> 5)
        version, opcode = first >> 5, first & 0x1F
        payload = body[HEADER_BYTES:-CRC_BYTES]

        def reply(status: Status, data: bytes = b"") -> bytes:
            return build_reply(opcode, seq, tile, status, data, version=version)

        if version != PROTOCOL_VERSION and opcode != Opcode.IDENTIFY:
            return reply(Status.BAD_VERSION)
        if opcode not in HOST_COMMANDS:
            return reply(Status.UNKNOWN_COMMAND)
        op = Opcode(opcode)
        if op != Opcode.IDENTIFY and self._last is not None and self._last[0] == seq:
            return reply(Status.DUPLICATE, bytes([self._last[1]]))
        status, data = self._command(op, tile, payload)
        self._last = (seq, status)
        return reply(status, data)

    def _link_check(self, raw: RawFrame) -> Status | None:
        if raw.line_error:
            return Status.LINE_ERROR
        if len(raw.body) > self.max_body:
            return Status.OVERSIZE
        if len(raw.body) < HEADER_BYTES + CRC_BYTES:
            return Status.TRUNCATED
        if crc16(raw.body) != 0:
            return Status.BAD_CRC
        return None

    def _command(self, op: Opcode, tile: int, payload: bytes) -> tuple[Status, bytes]:
        n = len(payload)
        max_words = self.info.max_words
        length_ok = {
            Opcode.WRITE_MEM: n >= 8 and n % 4 == 0 and (n - 4) // 4 <= max_words,
            Opcode.READ_MEM: n == 5 and 1 <= payload[4] <= max_words,
            Opcode.SEND: n % 4 == 2 and 1 <= n // 4 <= self.info.message_words,
            Opcode.ACK_MESSAGE: n == 1,
        }.get(op, n == (4 if op in CONFIG_COMMANDS else 0))
        if not length_ok:
            return Status.BAD_LENGTH, b""
        nodes = self.info.send_destinations if op == Opcode.SEND else self.info.tile_count
        if op in TILE_COMMANDS and tile >= nodes:
            return Status.TILE_RANGE, b""
        if op == Opcode.IDENTIFY:
            return Status.OK, self.info.to_bytes()
        if op in (Opcode.WRITE_MEM, Opcode.READ_MEM):
            address = int.from_bytes(payload[:4], "little")
            count = (n - 4) // 4 if op == Opcode.WRITE_MEM else payload[4]
            if address % 4 or address + 4 * count > self.info.mem_bytes:
                return Status.ADDR_RANGE, b""
            if self.tiles.busy(tile):
                return Status.TILE_BUSY, b""
            if op == Opcode.WRITE_MEM:
                for i, word in enumerate(_le_words(payload[4:])):
                    self.tiles.write_word(tile, address // 4 + i, word)
                return Status.OK, b""
            return Status.OK, _words_le(self.tiles.read_word(tile, address // 4 + i) for i in range(count))
        if op == Opcode.STATUS:
            return Status.OK, _words_le(self.tiles.read_status_word(tile, i) for i in range(STATUS_WORDS))
        if op in (Opcode.RESET, Opcode.HALT, Opcode.RUN):
            {Opcode.RESET: self.tiles.reset, Opcode.HALT: self.tiles.halt, Opcode.RUN: self.tiles.run}[op](tile)
            return Status.OK, b""
        if op in CONFIG_COMMANDS:
            self.tiles.write_config(tile, CONFIG_COMMANDS[op], int.from_bytes(payload, "little"))
            return Status.OK, b""
        if op == Opcode.SEND:
            return self.network.try_send(tile, int.from_bytes(payload[:2], "little"), _le_words(payload[2:]))
        # ACK_MESSAGE frees the pending message if the number is its own, otherwise (like REPUSH_MESSAGE) has it
        # pushed again; neither does anything while no message is pending.
        if self._pending is not None:
            if op == Opcode.ACK_MESSAGE and payload[0] == self._push_seq:
                self._pending = None
                self._push_seq = (self._push_seq + 1) & 0xFF
            else:
                self._pending_sent = False
        return Status.OK, b""
