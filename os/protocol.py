"""The host link protocol: frame codec, commands, replies and error codes (docs/protocol.md).

This module is the single source of the protocol's numbers: the bridge gateware (`tessera.hw.host_bridge`), its
reference model (`tessera.sim.bridge_model`) and the host OS all import them from here.

Layers, bottom up:
- line coding: SLIP (RFC 1055) byte stuffing. A frame on the wire is `END stuffed(body) END`; END (0xC0) never
  occurs inside a stuffed body, so any END resynchronises the receiver.
- frame body: a 3-byte header (`version<<5 | opcode`, `seq`, `tile`), for replies a status byte, then the
  payload, then CRC-16/CCITT-FALSE over everything before it, most significant byte first. Because the CRC is
  sent MSB first and has no final XOR, the CRC over a whole good body (CRC bytes included) is zero.
- commands and replies: typed dataclasses below; multi-byte payload fields are little-endian.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

PROTOCOL_VERSION = 1

# ---------------------------------------------------------------------------------------------------------
# Line coding (SLIP, RFC 1055)

END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD


def slip_encode(body: bytes) -> bytes:
    """`END stuffed(body) END`: the leading END flushes any noise the receiver holds."""
    out = bytearray([END])
    for byte in body:
        if byte == END:
            out += bytes([ESC, ESC_END])
        elif byte == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(byte)
    out.append(END)
    return bytes(out)


@dataclass(frozen=True)
class RawFrame:
    """One frame as the receiver delimited it: the unstuffed body, and whether the line coding was broken
    (an ESC followed by anything but ESC_END/ESC_ESC, or a UART framing/overrun error inside the frame)."""

    body: bytes
    line_error: bool = False


class SlipDecoder:
    """Streaming SLIP decoder: feed bytes, get complete frames. Empty frames (END END) are skipped.

    Bytes beyond `max_body` are counted but not kept, so a runaway frame costs bounded memory; its `body` then has
    length `max_body + 1` (the receiver only needs to know it was too long)."""

    def __init__(self, max_body: int = 1 << 16) -> None:
        self._max_body = max_body
        self._body = bytearray()
        self._escaped = False
        self._line_error = False

    def line_error(self) -> None:
        """The UART reported a framing or overrun error: the frame in progress is damaged."""
        self._line_error = True

    def feed(self, data: Iterable[int]) -> Iterator[RawFrame]:
        for byte in data:
            if byte == END:
                if self._body or self._line_error or self._escaped:
                    yield RawFrame(bytes(self._body), self._line_error or self._escaped)
                self._body.clear()
                self._escaped = False
                self._line_error = False
                continue
            if self._escaped:
                self._escaped = False
                if byte == ESC_END:
                    byte = END
                elif byte == ESC_ESC:
                    byte = ESC
                else:
                    self._line_error = True
            elif byte == ESC:
                self._escaped = True
                continue
            if len(self._body) <= self._max_body:
                self._body.append(byte)


# ---------------------------------------------------------------------------------------------------------
# CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, no final XOR. check("123456789") == 0x29B1.

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


def crc16_update(crc: int, byte: int) -> int:
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else (crc << 1)
        crc &= 0xFFFF
    return crc


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    for byte in data:
        crc = crc16_update(crc, byte)
    return crc


def seal(body: bytes) -> bytes:
    """Append the CRC (MSB first)."""
    return body + crc16(body).to_bytes(2, "big")


# ---------------------------------------------------------------------------------------------------------
# Numbers


class Opcode(enum.IntEnum):
    """Command opcodes (low 5 bits of the first body byte). MESSAGE only travels chip -> host."""

    IDENTIFY = 0
    WRITE_MEM = 1
    READ_MEM = 2
    RESET = 3
    HALT = 4
    RUN = 5
    STATUS = 6
    SET_PERMISSIONS = 7
    SET_SUPERVISOR = 8
    SET_WATCHDOG = 9
    SEND = 10
    ACK_MESSAGE = 11
    REPUSH_MESSAGE = 12
    MESSAGE = 31


class Status(enum.IntEnum):
    """The status byte of a reply. 1..5 are link errors (the frame was not understood; the host resends it),
    the rest are answers to a well-formed command that was not executed (except DUPLICATE, see below)."""

    OK = 0
    BAD_CRC = 1
    LINE_ERROR = 2  # UART framing/overrun error or a bad SLIP escape inside the frame
    TRUNCATED = 3  # shorter than header + CRC
    OVERSIZE = 4  # longer than the bridge's frame buffer (or, on MESSAGE, a message cut to max_words)
    BAD_VERSION = 5
    UNKNOWN_COMMAND = 6
    BAD_LENGTH = 7  # payload length wrong for the command (or a word count of 0 or > max_words)
    TILE_RANGE = 8
    ADDR_RANGE = 9  # misaligned, or the run of words leaves the tile's memory
    TILE_BUSY = 10  # memory access to a RUNNING or SLEEPING tile
    NET_BUSY = 11  # the network did not take the message in time; nothing was sent
    DUPLICATE = 12  # seq equals the last executed command's: not executed again; payload = its original status
    NET_FAULT = 13  # the network refused the message (e.g. SEND_DENIED); payload = the fault cause


#: Statuses after which resending the same frame is the right repair.
LINK_ERRORS = frozenset({Status.BAD_CRC, Status.LINE_ERROR, Status.TRUNCATED, Status.OVERSIZE})


class Feature(enum.IntFlag):
    """Feature bits in the IDENTIFY reply: which optional chip parts exist."""

    INSTRET = 1 << 0  # status reports retired instructions
    MESSAGE_COUNTERS = 1 << 1  # status reports messages in/out
    WATCHDOG = 1 << 2
    SEND_PERMISSIONS = 1 << 3
    SUPERVISOR = 1 << 4  # faults become DOWN messages to the supervisor
    MESSAGE_UNIT = 1 << 5  # tiles execute custom-0 message instructions
    IO_NODE = 1 << 6  # LEDs/buttons node at address tile_count (hw/io_node.py), permission bit tile_count+1

    def describe(self) -> str:
        """The set flags' names, comma-separated, lowest bit first; "none" for no flag."""
        return ", ".join(flag.name or "" for flag in Feature if flag & self) or "none"


class ConfigRegister(enum.IntEnum):
    """Per-tile configuration registers the SET_* commands write (the bus's `config_index`)."""

    PERMISSIONS = 0
    SUPERVISOR = 1
    WATCHDOG = 2


class StatusWord(enum.IntEnum):
    """Word indices of the bridge bus's status space (STATUS reads them all, in order)."""

    STATE_CAUSE = 0  # bits 1:0 state, bits 12:8 cause
    PC = 1
    CYCLE_LO = 2
    CYCLE_HI = 3
    RETIRED = 4
    MESSAGES_IN = 5
    MESSAGES_OUT = 6


STATUS_WORDS = len(StatusWord)

HEADER_BYTES = 3  # version/opcode, seq, tile
REPLY_HEADER_BYTES = 4  # + status
CRC_BYTES = 2
MIN_FRAME = HEADER_BYTES + CRC_BYTES
#: Bytes of the bridge's receive buffer: the largest command body (WRITE_MEM with max_words words) must fit.
RX_BUFFER_BYTES = 256
#: Largest max_words the receive buffer allows.
MAX_WORDS_LIMIT = (RX_BUFFER_BYTES - HEADER_BYTES - 4 - CRC_BYTES) // 4


def max_body(max_words: int) -> int:
    """Longest command body the bridge accepts: WRITE_MEM with max_words words."""
    return HEADER_BYTES + 4 + 4 * max_words + CRC_BYTES


class ProtocolError(Exception):
    """A reply said something other than OK, or the chip sent something the host cannot parse."""

    def __init__(self, message: str, status: Status | None = None) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------------------
# Commands (host -> chip)


@dataclass(frozen=True)
class Command:
    """Base: every command knows its opcode, target tile (0 when unused) and payload bytes."""

    opcode: ClassVar[Opcode]
    tile: int = 0

    def payload(self) -> bytes:
        return b""

    def body(self, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
        """The sealed (CRC appended) frame body."""
        if not 0 <= seq <= 0xFF:
            raise ValueError(f"sequence number {seq} out of range 0..255")
        if not 0 <= self.tile <= 0xFF:
            raise ValueError(f"tile {self.tile} out of range 0..255")
        return seal(bytes([(version << 5) | self.opcode, seq, self.tile]) + self.payload())

    def frame(self, seq: int) -> bytes:
        """The bytes to put on the wire."""
        return slip_encode(self.body(seq))


def _words(words: Iterable[int]) -> bytes:
    out = bytearray()
    for word in words:
        if not 0 <= word <= 0xFFFF_FFFF:
            raise ValueError(f"word {word:#x} does not fit 32 bits")
        out += word.to_bytes(4, "little")
    return bytes(out)


def _u32(value: int, name: str) -> bytes:
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"{name} {value:#x} does not fit 32 bits")
    return value.to_bytes(4, "little")


@dataclass(frozen=True)
class Identify(Command):
    opcode = Opcode.IDENTIFY


@dataclass(frozen=True)
class WriteMem(Command):
    """Write a run of words at a word-aligned byte address. Refused (TILE_BUSY) while the tile runs."""

    opcode = Opcode.WRITE_MEM
    address: int = 0
    words: tuple[int, ...] = ()

    def payload(self) -> bytes:
        return _u32(self.address, "address") + _words(self.words)


@dataclass(frozen=True)
class ReadMem(Command):
    opcode = Opcode.READ_MEM
    address: int = 0
    count: int = 1

    def payload(self) -> bytes:
        if not 0 <= self.count <= 0xFF:
            raise ValueError(f"word count {self.count} out of range 0..255")
        return _u32(self.address, "address") + bytes([self.count])


@dataclass(frozen=True)
class Reset(Command):
    """Reset one tile: pc <- 0, state HALTED, cause cleared. Memory and queued messages are kept."""

    opcode = Opcode.RESET


@dataclass(frozen=True)
class Halt(Command):
    opcode = Opcode.HALT


@dataclass(frozen=True)
class Run(Command):
    opcode = Opcode.RUN


@dataclass(frozen=True)
class ReadStatus(Command):
    opcode = Opcode.STATUS


@dataclass(frozen=True)
class SetPermissions(Command):
    """The tile's send permissions (the network defines the meaning of the 32 bits)."""

    opcode = Opcode.SET_PERMISSIONS
    value: int = 0

    def payload(self) -> bytes:
        return _u32(self.value, "permissions")


@dataclass(frozen=True)
class SetSupervisor(Command):
    """The network address that receives the tile's DOWN messages."""

    opcode = Opcode.SET_SUPERVISOR
    value: int = 0

    def payload(self) -> bytes:
        return _u32(self.value, "supervisor")


@dataclass(frozen=True)
class SetWatchdog(Command):
    """Watchdog period in cycles; 0 disables it."""

    opcode = Opcode.SET_WATCHDOG
    value: int = 0

    def payload(self) -> bytes:
        return _u32(self.value, "watchdog")


@dataclass(frozen=True)
class Send(Command):
    """Send one message into the network as the host: to tile `tile`, with a 16-bit `tag` and 1..message_words
    payload words (docs/network.md)."""

    opcode = Opcode.SEND
    tag: int = 0
    words: tuple[int, ...] = ()

    def payload(self) -> bytes:
        if not 0 <= self.tag <= 0xFFFF:
            raise ValueError(f"tag {self.tag:#x} does not fit 16 bits")
        return self.tag.to_bytes(2, "little") + _words(self.words)


@dataclass(frozen=True)
class AckMessage(Command):
    """Acknowledge the MESSAGE frame with push sequence `push_seq`: the bridge frees it and may push the next.
    Acknowledging any other number makes the bridge push its pending message again (loss repair)."""

    opcode = Opcode.ACK_MESSAGE
    push_seq: int = 0

    def payload(self) -> bytes:
        if not 0 <= self.push_seq <= 0xFF:
            raise ValueError(f"push sequence {self.push_seq} out of range 0..255")
        return bytes([self.push_seq])


@dataclass(frozen=True)
class RepushMessage(Command):
    """Have the bridge push its pending MESSAGE frame again, if it has one; frees nothing. The host's repair for a
    MESSAGE frame that arrived damaged or not at all, usable without knowing the pending push number (a host that
    starts while the bridge holds a message pushed to an earlier session cannot know it)."""

    opcode = Opcode.REPUSH_MESSAGE


# ---------------------------------------------------------------------------------------------------------
# Replies and pushed messages (chip -> host)


@dataclass(frozen=True)
class Reply:
    """A parsed chip -> host frame: a command's reply, or a pushed MESSAGE (opcode MESSAGE, seq = push seq)."""

    version: int
    opcode: int
    seq: int
    tile: int
    status: int
    payload: bytes

    @property
    def is_message(self) -> bool:
        return self.opcode == Opcode.MESSAGE

    def message(self) -> tuple[int, int, tuple[int, ...]]:
        """A MESSAGE frame's (source node, tag, words)."""
        if not self.is_message or len(self.payload) < 2:
            raise ProtocolError(f"not a MESSAGE frame: opcode {self.opcode}, {len(self.payload)} payload bytes")
        body = Reply(self.version, self.opcode, self.seq, self.tile, self.status, self.payload[2:])
        return self.tile, int.from_bytes(self.payload[:2], "little"), body.words()

    def words(self) -> tuple[int, ...]:
        if len(self.payload) % 4:
            raise ProtocolError(f"payload of {len(self.payload)} bytes is not whole words")
        return tuple(int.from_bytes(self.payload[i : i + 4], "little") for i in range(0, len(self.payload), 4))


def build_reply(
    opcode: int, seq: int, tile: int, status: int, payload: bytes = b"", version: int = PROTOCOL_VERSION
) -> bytes:
    """The sealed body of a chip -> host frame (used by the reference model and tests)."""
    return seal(bytes([((version << 5) | opcode) & 0xFF, seq & 0xFF, tile & 0xFF, status]) + payload)


def parse_reply(body: bytes) -> Reply:
    """Check the CRC and split a chip -> host body; raises ProtocolError naming the problem."""
    if len(body) < REPLY_HEADER_BYTES + CRC_BYTES:
        minimum = REPLY_HEADER_BYTES + CRC_BYTES
        raise ProtocolError(f"reply of {len(body)} bytes is shorter than header + CRC ({minimum})")
    if crc16(body) != 0:
        raise ProtocolError(f"reply CRC mismatch (body {body.hex()})", Status.BAD_CRC)
    return Reply(body[0] >> 5, body[0] & 0x1F, body[1], body[2], body[3], body[REPLY_HEADER_BYTES:-CRC_BYTES])


@dataclass(frozen=True)
class ChipInfo:
    """The IDENTIFY reply: protocol version and the chip parameters an image must match."""

    protocol_version: int
    tile_count: int
    mem_log2: int  # tile memory is 1 << mem_log2 bytes
    max_words: int  # most words per WRITE_MEM / READ_MEM
    message_words: int  # most payload words per message (SEND / MESSAGE)
    mesh_width: int
    mesh_height: int
    mailbox_depth: int
    host_node: int  # the host's network address
    features: Feature
    clock_hz: int

    _FORMAT = "<BBBBBBBBBHI"
    SIZE = struct.calcsize(_FORMAT)

    @property
    def mem_bytes(self) -> int:
        return 1 << self.mem_log2

    @property
    def io_node(self) -> int | None:
        """The I/O node's address, right after the tiles (the chip places it there: hw/io_node.py `io_address`),
        or None on a chip without one."""
        return self.tile_count if self.features & Feature.IO_NODE else None

    @property
    def send_destinations(self) -> int:
        """SEND may go to nodes 0 .. send_destinations - 1: the tiles, and the I/O node on a chip that has one.
        Every other tile command addresses a tile, 0 .. tile_count - 1."""
        return self.tile_count + (self.io_node is not None)

    def to_bytes(self) -> bytes:
        return struct.pack(
            self._FORMAT,
            self.protocol_version,
            self.tile_count,
            self.mem_log2,
            self.max_words,
            self.message_words,
            self.mesh_width,
            self.mesh_height,
            self.mailbox_depth,
            self.host_node,
            int(self.features),
            self.clock_hz,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ChipInfo:
        if len(data) != cls.SIZE:
            raise ProtocolError(f"IDENTIFY payload has {len(data)} bytes, expected {cls.SIZE}")
        v, n, m, w, mwords, mw, mh, md, hn, feat, clk = struct.unpack(cls._FORMAT, data)
        return cls(v, n, m, w, mwords, mw, mh, md, hn, Feature(feat), clk)


@dataclass(frozen=True)
class TileStatus:
    """The STATUS reply."""

    state: int  # firmware.isa.TileState
    cause: int  # firmware.isa.Cause, meaningful when TRAPPED
    pc: int
    cycle: int  # the chip-wide cycle counter when the status was read
    retired: int
    messages_in: int
    messages_out: int

    SIZE = 4 * STATUS_WORDS

    @classmethod
    def from_words(cls, words: tuple[int, ...]) -> TileStatus:
        if len(words) != STATUS_WORDS:
            raise ProtocolError(f"STATUS payload has {len(words)} words, expected {STATUS_WORDS}")
        w = words
        return cls(w[0] & 3, (w[0] >> 8) & 0x1F, w[1], w[2] | (w[3] << 32), w[4], w[5], w[6])

    def to_words(self) -> tuple[int, ...]:
        return (
            self.state | (self.cause << 8),
            self.pc,
            self.cycle & 0xFFFF_FFFF,
            self.cycle >> 32,
            self.retired,
            self.messages_in,
            self.messages_out,
        )
