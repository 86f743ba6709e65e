"""A typed client for the chip over any `Link`: the host link protocol (docs/protocol.md) as method calls.

    with open_link("serial:/dev/ttyUSB1") as link:
        chip = Chip(link)                    # identifies the chip first (see "Sequence numbers")
        chip.load(3, image_bytes)            # write + read back
        chip.run(3)
        for message in chip.poll(0.5):       # pushed messages: service output, logs, DOWN reports
            ...

Loss repair (the protocol's rules, docs/protocol.md):
- Stop and wait: one command frame at a time; the next frame is written only after the reply (the bridge holds
  its UART off while it executes a frame).
- A link-error reply (BAD_CRC, LINE_ERROR, TRUNCATED, OVERSIZE) or no reply within `reply_timeout` means the
  frame is sent again. Commands that change state are resent with the SAME sequence number, so the bridge
  answers DUPLICATE (with the original status) if it had executed them already: a retried SEND is never sent
  twice. Reads (IDENTIFY, READ_MEM, STATUS) get a new number: running them again is harmless and a DUPLICATE
  reply would carry no data.
- Pushed MESSAGE frames are acknowledged (ACK_MESSAGE with their push number) after the command in progress; a
  re-pushed copy of a message already acknowledged is dropped. When a frame arrived damaged, and whenever the
  link has been quiet for `nudge_interval` seconds while polling, the host sends REPUSH_MESSAGE: the bridge then
  pushes its pending message again, if it has one (a MESSAGE frame lost on the wire is repaired this way). The
  host only ever acknowledges push numbers it has seen, so a message pushed to an earlier session is never freed
  unseen.

Sequence numbers: the bridge refuses a command whose sequence number equals the last executed one (DUPLICATE).
IDENTIFY is exempt and still becomes the "last executed" command, so `Chip` identifies first and numbers every
later command after it: a new host session never collides with the previous session's last number.

DOWN reports and logs are ordinary messages to the host, told apart by their tag (`DOWN_TAG`, `LOG_TAG`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from tessera.firmware.isa import Cause, TileState
from tessera.os.errors import TesseraError
from tessera.os.link import Link, LinkError
from tessera.os.protocol import (
    LINK_ERRORS,
    AckMessage,
    ChipInfo,
    Command,
    Halt,
    Identify,
    Opcode,
    ProtocolError,
    ReadMem,
    ReadStatus,
    Reply,
    RepushMessage,
    Reset,
    Run,
    Send,
    SetPermissions,
    SetSupervisor,
    SetWatchdog,
    SlipDecoder,
    Status,
    TileStatus,
    WriteMem,
    parse_reply,
)

#: Tag of a service's log line to the host (the compiler's `log(...)`, tessera.os.codegen_support.LOG_TAG).
LOG_TAG = 0xFFFF
#: Tag of a DOWN report: the source is the tile that stopped, the words are (cause, pc).
DOWN_TAG = 0xFFFE

REPLY_TIMEOUT_S = 0.5
RETRIES = 6
NUDGE_INTERVAL_S = 0.5
#: How long `send` keeps offering a message the network has no room for (NET_BUSY) before giving up.
SEND_BUSY_TIMEOUT_S = 5.0
#: Placeholder for "last acknowledged push number" before the host has acknowledged any (`_acked_any` is False
#: until then, so it is never compared or sent).
UNKNOWN_PUSH_SEQ = 0xFF

_READS = frozenset({Opcode.IDENTIFY, Opcode.READ_MEM, Opcode.STATUS})


class ChipError(TesseraError):
    """A command the chip refused or did not answer; the message names the command, tile and reason."""

    def __init__(self, message: str, status: Status | None = None) -> None:
        super().__init__(message)
        self.status = status


class VerifyError(ChipError):
    """Memory read back differs from what was written."""


def cause_name(cause: int) -> str:
    try:
        return Cause(cause).name
    except ValueError:
        return f"cause {cause}"


@dataclass(frozen=True)
class Incoming:
    """A message the network delivered to the host: `source` node, 16-bit `tag`, 1..4 `words`."""

    source: int
    tag: int
    words: tuple[int, ...]

    @property
    def is_down(self) -> bool:
        return self.tag == DOWN_TAG

    @property
    def is_log(self) -> bool:
        return self.tag == LOG_TAG

    def down(self) -> Down:
        if not self.is_down or len(self.words) < 2:
            raise ProtocolError(f"not a DOWN report: tag {self.tag:#x}, {len(self.words)} words")
        return Down(self.source, self.words[0], self.words[1])


@dataclass(frozen=True)
class Down:
    """A DOWN report: `tile` stopped with `cause` at `pc`."""

    tile: int
    cause: int
    pc: int

    @property
    def cause_name(self) -> str:
        return cause_name(self.cause)


def describe_status(status: TileStatus) -> str:
    """`running`, `sleeping`, `halted` or `trapped (CAUSE at 0xPC)`."""
    state = TileState(status.state)
    if state is TileState.TRAPPED:
        return f"trapped ({cause_name(status.cause)} at {status.pc:#x})"
    return state.name.lower()


class Chip:
    """The chip behind `link`. Construction identifies it (`info`); every method is one or more commands.

    `clock` gives seconds (monotonic); tests may pass their own. Nothing here knows what carries the bytes."""

    def __init__(self, link: Link, *, reply_timeout: float = REPLY_TIMEOUT_S, retries: int = RETRIES,
                 nudge_interval: float = NUDGE_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.nudge_interval = nudge_interval
        self.clock = clock
        self._decoder = SlipDecoder()
        self._frames: deque[bytes] = deque()  # received bodies not yet looked at
        self._seq = 0
        self._last_acked = UNKNOWN_PUSH_SEQ
        self._to_ack: int | None = None
        self._acked_any = False
        self._repair = True  # nudge once at the start: a message may wait from an earlier session
        self.inbox: deque[Incoming] = deque()
        self.retransmissions = 0
        self._info: ChipInfo | None = None
        self.info: ChipInfo = self.identify()
        self._info = self.info

    # -- commands ------------------------------------------------------------------------------------------

    def identify(self) -> ChipInfo:
        reply = self._command(Identify())
        try:
            return ChipInfo.from_bytes(reply.payload)
        except ProtocolError as error:
            raise ChipError(f"{self.link.target}: the chip's IDENTIFY reply is malformed: {error}") from None

    def write_memory(self, tile: int, address: int, data: bytes,
                     progress: Callable[[int], None] | None = None) -> None:
        """Write `data` (zero-padded to whole words) from byte `address`, in runs of `info.max_words` words;
        `progress(bytes_done)` is called after each run."""
        words = _to_words(data)
        step = self.info.max_words
        for index in range(0, len(words), step):
            self._command(WriteMem(tile=tile, address=address + 4 * index, words=tuple(words[index:index + step])))
            if progress is not None:
                progress(min(4 * (index + step), len(data)))

    def read_memory(self, tile: int, address: int, count: int) -> list[int]:
        """`count` words from byte `address`."""
        out: list[int] = []
        step = self.info.max_words
        for index in range(0, count, step):
            run = min(step, count - index)
            words = self._command(ReadMem(tile=tile, address=address + 4 * index, count=run)).words()
            if len(words) != run:
                raise ChipError(f"READ_MEM tile {tile} at {address + 4 * index:#x}: {len(words)} words, asked {run}")
            out += words
        return out

    def load(self, tile: int, data: bytes, address: int = 0,
             progress: Callable[[int], None] | None = None) -> None:
        """Write `data` and read it back; VerifyError names the first word that differs."""
        self.write_memory(tile, address, data, progress)
        expected = _to_words(data)
        actual = self.read_memory(tile, address, len(expected))
        for index, (want, got) in enumerate(zip(expected, actual)):
            if want != got:
                raise VerifyError(f"tile {tile}: verify failed at {address + 4 * index:#x}: wrote {want:#010x}, "
                                  f"read {got:#010x}")

    def reset(self, tile: int) -> None:
        self._command(Reset(tile=tile))

    def halt(self, tile: int) -> None:
        self._command(Halt(tile=tile))

    def run(self, tile: int) -> None:
        self._command(Run(tile=tile))

    def status(self, tile: int) -> TileStatus:
        reply = self._command(ReadStatus(tile=tile))
        try:
            return TileStatus.from_words(reply.words())
        except ProtocolError as error:
            raise ChipError(f"STATUS tile {tile}: malformed reply: {error}") from None

    def set_permissions(self, tile: int, value: int) -> None:
        self._command(SetPermissions(tile=tile, value=value))

    def set_supervisor(self, tile: int, address: int) -> None:
        self._command(SetSupervisor(tile=tile, value=address))

    def set_watchdog(self, tile: int, cycles: int) -> None:
        self._command(SetWatchdog(tile=tile, value=cycles))

    def send(self, tile: int, tag: int, words: Sequence[int], busy_timeout: float = SEND_BUSY_TIMEOUT_S) -> None:
        """Send one message as the host; while the network is busy (NET_BUSY: nothing was sent) offer it again
        until `busy_timeout` passes."""
        deadline = self.clock() + busy_timeout
        command = Send(tile=tile, tag=tag, words=tuple(words))
        while True:
            try:
                self._command(command)
                return
            except ChipError as error:
                if error.status is not Status.NET_BUSY or self.clock() >= deadline:
                    raise
            self._pump(min(0.01, max(0.0, deadline - self.clock())))

    # -- pushed messages -----------------------------------------------------------------------------------

    def poll(self, timeout: float) -> list[Incoming]:
        """The messages that arrived, waiting up to `timeout` s for the first; acknowledges them."""
        deadline = self.clock() + timeout
        quiet_since = self.clock()
        while not self.inbox:
            self._settle()
            if self.inbox:
                break
            now = self.clock()
            if now >= deadline:
                break
            if now - quiet_since >= self.nudge_interval:
                self._nudge()
                quiet_since = self.clock()
                continue
            if self._pump(min(deadline - now, self.nudge_interval)):
                quiet_since = self.clock()
        self._settle()
        out = list(self.inbox)
        self.inbox.clear()
        return out

    def take(self, predicate: Callable[[Incoming], bool], timeout: float) -> Incoming | None:
        """The first message matching `predicate` within `timeout` s; the others stay in `inbox` in order."""
        deadline = self.clock() + timeout
        held: list[Incoming] = []
        try:
            while True:
                messages = self.poll(max(0.0, deadline - self.clock()))
                for index, message in enumerate(messages):
                    if predicate(message):
                        held.extend(messages[index + 1:])  # the ones after it in the same batch stay too
                        held.extend(self.inbox)
                        self.inbox.clear()
                        return message
                    held.append(message)
                if self.clock() >= deadline:
                    return None
        finally:
            self.inbox.extendleft(reversed(held))

    # -- the transaction layer -----------------------------------------------------------------------------

    def _command(self, command: Command) -> Reply:
        reply = self._transact(command)
        self._settle()
        return reply

    def _transact(self, command: Command) -> Reply:
        what = f"{command.opcode.name}" + ("" if command.opcode == Opcode.IDENTIFY else f" tile {command.tile}")
        seq = self._next_seq()
        problem = "no reply"
        for attempt in range(self.retries):
            if attempt:
                self.retransmissions += 1
                if command.opcode in _READS:
                    seq = self._next_seq()
            self._write(command.frame(seq))
            reply = self._await_reply(command.opcode, seq)
            if reply is None:
                problem = f"no reply within {self.reply_timeout} s"
                continue
            status = _status(reply.status)
            if status in LINK_ERRORS:
                problem = f"the chip reported {status.name} each time"
                continue
            if status is Status.DUPLICATE:  # an earlier copy was executed; its status is the answer
                status = _status(reply.payload[0]) if reply.payload else Status.BAD_LENGTH
                if status is Status.OK:
                    return reply
            if status is not Status.OK:
                raise ChipError(f"{what}: {_explain(status, reply, self._info)}",
                                status)
            return reply
        raise ChipError(f"{self.link.target}: {what}: {problem} after {self.retries} tries "
                        f"(is the board connected, powered and loaded with the Tessera bitstream?)")

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def _write(self, data: bytes) -> None:
        try:
            self.link.write(data)
        except LinkError as error:
            raise ChipError(str(error)) from None

    def _await_reply(self, opcode: Opcode, seq: int) -> Reply | None:
        deadline = self.clock() + self.reply_timeout
        while True:
            for reply in self._replies():
                if reply.opcode == opcode and reply.seq == seq:
                    return reply
            remaining = deadline - self.clock()
            if remaining <= 0:
                return None
            self._pump(remaining)

    def _replies(self) -> Iterator[Reply]:
        """Parse the frames received so far; pushed messages go to the inbox, command replies are yielded."""
        while self._frames:
            body = self._frames.popleft()
            try:
                reply = parse_reply(body)
            except ProtocolError:
                self._repair = True  # it may have been a MESSAGE: have the bridge push it again
                continue
            if reply.is_message:
                self._take_message(reply)
            else:
                yield reply

    def _take_message(self, reply: Reply) -> None:
        if reply.seq == self._to_ack or (self._acked_any and reply.seq == self._last_acked):
            return  # a copy pushed again (after a nudge) of a message already taken
        try:
            source, tag, words = reply.message()
        except ProtocolError:
            self._repair = True
            return
        self.inbox.append(Incoming(source, tag, words))
        self._to_ack = reply.seq

    def _settle(self) -> None:
        """Acknowledge what arrived (each acknowledgement may bring the next message, which is taken too), and
        have a message pushed again if a damaged frame may have been one."""
        list(self._replies())
        while self._to_ack is not None or self._repair:
            if self._to_ack is not None:
                push_seq, self._to_ack = self._to_ack, None
                self._transact(AckMessage(push_seq=push_seq))
                self._last_acked, self._acked_any = push_seq, True
            else:
                self._nudge()
            list(self._replies())

    def _nudge(self) -> None:
        """REPUSH_MESSAGE: the bridge pushes its pending message again, if it has one; nothing is freed."""
        self._repair = False
        self._transact(RepushMessage())

    def _pump(self, timeout: float) -> bool:
        """Read what the link has (waiting up to `timeout` s) into the frame queue; False if nothing came."""
        try:
            data = self.link.read(max(0.0, timeout))
        except LinkError as error:
            raise ChipError(str(error)) from None
        for raw in self._decoder.feed(data):
            if raw.line_error:
                self._repair = True
            else:
                self._frames.append(raw.body)
        return bool(data)


def _status(value: int) -> Status:
    try:
        return Status(value)
    except ValueError:
        return Status.UNKNOWN_COMMAND


def _explain(status: Status, reply: Reply, info: ChipInfo | None) -> str:
    if status is Status.TILE_RANGE and info is not None:
        tiles = f"tiles 0..{info.tile_count - 1}" if info.tile_count else "no tiles"
        io = f", the I/O node is node {info.io_node}" if info.io_node is not None else ""
        return f"no such tile (the chip has {tiles}{io})"
    if status is Status.ADDR_RANGE and info is not None:
        return f"address out of range or misaligned (tile memory is {info.mem_bytes} bytes)"
    if status is Status.TILE_BUSY:
        return "the tile is running (halt it before touching its memory)"
    if status is Status.NET_BUSY:
        return "the network did not take the message in time (the destination's mailbox stays full)"
    if status is Status.NET_FAULT:
        cause = reply.payload[0] if reply.payload else -1
        return f"the network refused the message ({cause_name(cause)})"
    return f"the chip answered {status.name}"


def _to_words(data: bytes | Iterable[int]) -> list[int]:
    raw = bytes(data) + bytes(-len(bytes(data)) % 4)
    return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]
