"""What a Tessera service imports: the base class, the field types, messages and the messaging calls.

A service is ordinary Python source (see docs/services.md). The compiler (`tessera.os.service_lang`,
`tessera.os.codegen`) turns it into RV32I code for a tile; the host-side runner (`tessera.os.service_runner`)
executes the same source in CPython with the same 32-bit semantics. The functions here only delegate to the
runner that is executing the service: called outside a runner they raise `RuntimeError`.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from tessera.firmware.isa import Cause

__all__ = [
    "Array",
    "Bytes",
    "Final",
    "Message",
    "Service",
    "call",
    "log",
    "me",
    "now",
    "receive",
    "reply",
    "send",
    "send_to",
    "sleep",
    "snapshot",
    "u32ge",
    "u32gt",
    "u32le",
    "u32lt",
    "u32shr",
]

MASK32 = 0xFFFF_FFFF


class FaultReason(enum.IntEnum):
    """Why a compiled service stopped with Cause.ASSERTION; the tile holds this code in a0 when it traps."""

    ASSERT = 1  # an `assert` statement failed
    DIVIDE_BY_ZERO = 2  # `//` or `%` by zero
    INDEX = 3  # an array, byte string or message index outside 0 <= i < len
    NO_MESSAGE = 4  # a field of a message that is None (a receive or call that timed out)
    STACK = 5  # recursion ran the stack into the service's code and data


class ServiceFault(Exception):
    """A fault in the host-side runner: the tile would trap with `cause` (and, for ASSERTION, `reason` in a0)."""

    def __init__(self, reason: FaultReason | None, detail: str, cause: Cause = Cause.ASSERTION) -> None:
        what = reason.name.lower().replace("_", " ") if reason is not None else cause.name.lower()
        super().__init__(f"{what}: {detail}")
        self.reason = reason
        self.cause = cause


class Service:
    """Base class of a service: subclass it, declare fields as annotations, define `handle` (and `init`)."""

    def init(self) -> None:
        """Called once when the tile starts, before the first message."""

    def handle(self, msg: Message) -> None:
        """Called for every message the tile receives."""


class _ArraySpec:
    """`Array[int, N]` as written in a field annotation: N 32-bit integers, zero unless initialised."""

    def __class_getitem__(cls, params: tuple[type, int]) -> tuple[str, int]:
        element, size = params
        if element is not int:
            raise TypeError("Array elements must be int")
        return ("array", size)


class _BytesSpec:
    """`Bytes[N]` as written in a field annotation: N bytes (0..255), zero unless initialised."""

    def __class_getitem__(cls, size: int) -> tuple[str, int]:
        return ("bytes", size)


Array = _ArraySpec
Bytes = _BytesSpec


def _fault_index(what: str, index: int, size: int) -> ServiceFault:
    return ServiceFault(FaultReason.INDEX, f"index {index} outside {what} of length {size}")


class WordArray:
    """The runner's value of an `Array[int, N]` field: stores wrap to signed 32 bits, indices are checked."""

    def __init__(self, size: int, initial: Sequence[int] = ()) -> None:
        self._items = [_signed(v) for v in initial] + [0] * (size - len(initial))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < len(self._items):
            raise _fault_index("array", index, len(self._items))
        return self._items[index]

    def __setitem__(self, index: int, value: int) -> None:
        if not 0 <= index < len(self._items):
            raise _fault_index("array", index, len(self._items))
        self._items[index] = _signed(value)


class ByteArray(WordArray):
    """The runner's value of a `Bytes[N]` field: a store keeps the low 8 bits, as the tile's `sb` does."""

    def __init__(self, size: int, initial: bytes = b"") -> None:
        super().__init__(size, list(initial))

    def __setitem__(self, index: int, value: int) -> None:
        if not 0 <= index < len(self._items):
            raise _fault_index("byte string", index, len(self._items))
        self._items[index] = int(value) & 0xFF


def _signed(value: int) -> int:
    value = int(value) & MASK32
    return value - (1 << 32) if value >> 31 else value


@dataclass(frozen=True)
class Message:
    """A received message: the sender's node address, the tag, and 1..N payload words (`msg[i]`, `len(msg)`)."""

    sender: int
    tag: int
    words: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < len(self.words):
            raise _fault_index("message", index, len(self.words))
        return _signed(self.words[index])


class Host(Protocol):
    """What a runner provides to the API calls of the service it is executing."""

    def send(self, name: str, words: tuple[int, ...], tag: int) -> None: ...
    def send_to(self, node: int, words: tuple[int, ...], tag: int) -> None: ...
    def reply(self, words: tuple[int, ...]) -> None: ...
    def receive(self, timeout: int | None) -> Message | None: ...
    def call(self, name: str, words: tuple[int, ...], tag: int, timeout: int | None) -> Message | None: ...
    def log(self, words: tuple[int, ...]) -> None: ...
    def now(self) -> int: ...
    def sleep(self, cycles: int) -> None: ...
    def me(self) -> int: ...
    def snapshot(self) -> None: ...


class _HostSlot(threading.local):
    """The runner executing a service on this thread (each runner runs its service on a thread of its own)."""

    host: Host | None = None


_slot = _HostSlot()


def bind_host(host: Host) -> None:
    """Make host serve the API calls made on the current thread."""
    _slot.host = host


def _current() -> Host:
    if _slot.host is None:
        raise RuntimeError("the Tessera service API is only available while a runner executes the service")
    return _slot.host


def send(name: str, *words: int, tag: int = 0) -> None:
    """Send 1..N words to the service called `name` (resolved to its tile when the system is built)."""
    _current().send(name, words, tag)


def send_to(node: int, *words: int, tag: int = 0) -> None:
    """Send 1..N words to a node address, e.g. a `msg.sender` kept for later."""
    _current().send_to(node, words, tag)


def reply(*words: int) -> None:
    """Send 1..N words back to the sender of the message `handle` is handling, with that message's tag."""
    _current().reply(words)


def receive(timeout: int | None = None) -> Message | None:
    """The next message (inside a handler); with `timeout` (cycles), None if none arrived in time."""
    return _current().receive(timeout)


def call(name: str, *words: int, tag: int = 0, timeout: int | None = None) -> Message | None:
    """Send to `name`, then return the next message received (the reply); None if `timeout` cycles pass first."""
    return _current().call(name, words, tag, timeout)


def log(*words: int) -> None:
    """Send 1..N words to the host's log."""
    _current().log(words)


def now() -> int:
    """The low 32 bits of the chip's cycle counter (signed); only differences between readings are meaningful."""
    return _current().now()


def sleep(cycles: int) -> None:
    """Wait for about `cycles` cycles."""
    _current().sleep(cycles)


def me() -> int:
    """This tile's own node address."""
    return _current().me()


def snapshot() -> None:
    """Send the service's whole state (every field, as laid out in tile memory) to the host as one snapshot.

    For a service with `persist = true` the host keeps the last complete snapshot and writes it back into the tile
    before the service runs again (docs/services.md, "Persistent state").
    """
    _current().snapshot()


def u32lt(a: int, b: int) -> bool:
    """a < b comparing both as unsigned 32-bit numbers."""
    return (a & MASK32) < (b & MASK32)


def u32le(a: int, b: int) -> bool:
    """a <= b comparing both as unsigned 32-bit numbers."""
    return (a & MASK32) <= (b & MASK32)


def u32gt(a: int, b: int) -> bool:
    """a > b comparing both as unsigned 32-bit numbers."""
    return (a & MASK32) > (b & MASK32)


def u32ge(a: int, b: int) -> bool:
    """a >= b comparing both as unsigned 32-bit numbers."""
    return (a & MASK32) >= (b & MASK32)


def u32shr(a: int, n: int) -> int:
    """Logical (zero-filling) shift right of a as an unsigned 32-bit number by n & 31 bits."""
    return _signed((a & MASK32) >> (n & 31))


#: The names a service may import from this module.
API_NAMES: Final = frozenset(__all__)
