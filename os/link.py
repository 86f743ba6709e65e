"""The host link: one byte pipe to the chip, whatever carries it (a board's serial port, a TCP socket, the
virtual board). The protocol layer (tessera.os.protocol) sits on top and only ever sees `Link`.

Contract:
- `open_link(target)` parses a target string and returns an OPEN link:
  `sim` (also `sim:verilator`, `sim:icarus`) -> SimLink, `serial:DEVICE[@BAUD]` -> SerialLink,
  `tcp:HOST:PORT` -> TcpLink. A malformed target raises LinkTargetError, an unreachable board LinkError; both
  carry one line fit to show the user.
- `write(data)` sends every byte or raises LinkError. `read(timeout)` returns the bytes that are available as
  soon as there is at least one, or b"" when `timeout` seconds pass with none (timeout=None waits for ever);
  LinkClosedError when the other end went away. `read_exact(count, timeout)` collects exactly `count` bytes or
  raises LinkTimeoutError.
- Links are context managers (`with open_link(...) as link:`); `close()` is idempotent.
- `write`/`read` on a link that is not open raise LinkError.
- Links move bytes only: no framing, no retries. Nothing here exists only for simulation except SimLink's
  starting and stopping of the board process; the bytes flow through the same TcpLink a remote board uses.
"""

from __future__ import annotations

import atexit
import re
import select
import socket
import time
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

#: The host bridge's UART rate on a board when the target gives none (`serial:DEVICE@BAUD` overrides it).
DEFAULT_BAUD = 115_200
CONNECT_TIMEOUT_S = 5.0
READ_CHUNK = 65536
TARGET_SYNTAX = "sim, sim:verilator, sim:icarus, serial:DEVICE[@BAUD] or tcp:HOST:PORT"


class LinkError(Exception):
    """The link failed: no board, the board went away, a write could not be completed."""


class LinkTargetError(LinkError, ValueError):
    """A link target string that does not parse."""


class LinkClosedError(LinkError):
    """The other end closed the link."""


class LinkTimeoutError(LinkError, TimeoutError):
    """read_exact ran out of time."""


class Link(ABC):
    """A byte pipe to the chip. Subclasses implement _open, _close, write and _read."""

    target: str  # the target string that names this link, e.g. "tcp:127.0.0.1:4000"

    def __init__(self, target: str) -> None:
        self.target = target
        self._is_open = False
        self._pending = b""  # bytes read_exact fetched beyond its count, handed out by the next read

    @property
    def is_open(self) -> bool:
        return self._is_open

    def open(self) -> Self:
        if not self._is_open:
            self._open()
            self._is_open = True
        return self

    def close(self) -> None:
        if self._is_open:
            self._is_open = False
            self._close()

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send all of `data`."""

    @abstractmethod
    def _read(self, timeout: float | None) -> bytes:
        """What the transport has (at least one byte), waiting up to `timeout` s; b"" if nothing came."""

    def read(self, timeout: float | None = None) -> bytes:
        """The bytes available now (at least one), waiting up to `timeout` s; b"" if none came in time."""
        if self._pending:
            return self._take_pending(len(self._pending))
        return self._read(timeout)

    def read_exact(self, count: int, timeout: float | None = None) -> bytes:
        """Exactly `count` bytes, waiting up to `timeout` s in total; LinkTimeoutError otherwise.

        Bytes beyond `count` that arrive in the same chunk are kept for the next read.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        data = bytearray(self._take_pending(count))
        while len(data) < count:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            chunk = self.read(remaining)
            if not chunk and remaining == 0.0:
                self._pending = bytes(data) + self._pending
                raise LinkTimeoutError(f"{self.target}: {len(data)} of {count} bytes arrived within {timeout} s")
            data += chunk
        self._pending = bytes(data[count:]) + self._pending
        return bytes(data[:count])

    def _take_pending(self, limit: int) -> bytes:
        taken, self._pending = self._pending[:limit], self._pending[limit:]
        return taken

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.target} {'open' if self._is_open else 'closed'}>"


class TcpLink(Link):
    """A TCP connection to a board: the virtual board, or a serial-to-TCP bridge on another machine."""

    def __init__(self, host: str, port: int, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        super().__init__(f"tcp:{host}:{port}")
        self.host = host
        self.port = port
        self._connect_timeout = connect_timeout
        self._socket: socket.socket | None = None

    def _open(self) -> None:
        try:
            connection = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
        except ConnectionRefusedError:
            raise LinkError(f"no board at {self.target}: connection refused") from None
        except TimeoutError:
            raise LinkError(f"no board at {self.target}: no answer within {self._connect_timeout} s") from None
        except OSError as error:
            raise LinkError(f"no board at {self.target}: {error.strerror or error}") from None
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.settimeout(None)
        self._socket = connection

    def _close(self) -> None:
        assert self._socket is not None
        self._socket.close()
        self._socket = None

    def _connection(self) -> socket.socket:
        if self._socket is None:
            raise LinkError(f"{self.target}: link is not open")
        return self._socket

    def write(self, data: bytes) -> None:
        try:
            self._connection().sendall(data)
        except OSError as error:
            raise LinkClosedError(f"{self.target}: the board closed the link ({error.strerror or error})") from None

    def _read(self, timeout: float | None) -> bytes:
        connection = self._connection()
        ready, _, _ = select.select([connection], [], [], timeout)
        if not ready:
            return b""
        try:
            data = connection.recv(READ_CHUNK)
        except OSError as error:
            raise LinkClosedError(f"{self.target}: the board closed the link ({error.strerror or error})") from None
        if not data:
            raise LinkClosedError(f"{self.target}: the board closed the link (is another host connected to it?)")
        return data


class SerialLink(Link):
    """A serial port (pyserial): a board's USB UART, or the virtual board's pty."""

    def __init__(self, device: str, baud: int = DEFAULT_BAUD) -> None:
        super().__init__(f"serial:{device}@{baud}")
        self.device = device
        self.baud = baud
        self._port: object | None = None

    def _open(self) -> None:
        import serial

        try:
            self._port = serial.Serial(self.device, self.baud, timeout=0, write_timeout=None)
        except serial.SerialException as error:
            reason = "no such device" if "No such file" in str(error) else str(error).split(":", 1)[-1].strip()
            raise LinkError(f"no board at serial:{self.device}: {reason}") from None

    def _close(self) -> None:
        self._serial().close()
        self._port = None

    def _serial(self):  # -> serial.Serial (pyserial ships no type hints)
        if self._port is None:
            raise LinkError(f"{self.target}: link is not open")
        return self._port

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._serial().write(data)
            self._serial().flush()
        except serial.SerialException as error:
            raise LinkClosedError(f"{self.target}: {error}") from None

    def _read(self, timeout: float | None) -> bytes:
        import serial

        port = self._serial()
        try:
            port.timeout = timeout
            first = port.read(1)
            if not first:
                return b""
            port.timeout = 0
            return first + port.read(port.in_waiting or 0)
        except serial.SerialException as error:
            raise LinkClosedError(f"{self.target}: {error}") from None


class SimLink(Link):
    """The virtual board: attaches to one started with `tessera sim` for the same chip, or starts its own
    (Verilator, or Icarus with simulator="icarus") and stops it on close or at interpreter exit.

    `chip` is a tessera.sim.virtual_board.ChipSpec (default: the project's chip top with default parameters).
    """

    def __init__(self, chip: object | None = None, *, simulator: str = "verilator") -> None:
        from tessera.sim import virtual_board

        super().__init__("sim" if simulator == "verilator" else f"sim:{simulator}")
        if simulator not in virtual_board.SIMULATORS:
            raise LinkTargetError(f"bad link target 'sim:{simulator}': simulators are {', '.join(virtual_board.SIMULATORS)}")
        self.chip = chip if chip is not None else virtual_board.ChipSpec()
        self.simulator = simulator
        self.board: virtual_board.VirtualBoard | None = None  # set when this link started the board
        self.endpoints: virtual_board.Endpoints | None = None
        self._tcp: TcpLink | None = None

    def _open(self) -> None:
        from tessera.sim import virtual_board

        try:
            key = virtual_board.design_key(self.chip, self.simulator)  # type: ignore[arg-type]
            endpoints = virtual_board.find_running(key)
            if endpoints is None:
                build = virtual_board.build_board(self.chip, simulator=self.simulator)  # type: ignore[arg-type]
                self.board = virtual_board.VirtualBoard.start(build, pty=False)
                atexit.register(self._stop_board)
                endpoints = self.board.endpoints
        except virtual_board.BoardError as error:
            raise LinkError(f"{self.target}: {error}") from None
        self.endpoints = endpoints
        self._tcp = TcpLink(endpoints.host, endpoints.port)
        try:
            self._tcp.open()
        except LinkError:
            self._stop_board()
            raise

    def _close(self) -> None:
        assert self._tcp is not None
        self._tcp.close()
        self._tcp = None
        self._stop_board()

    def _stop_board(self) -> None:
        if self.board is not None:
            board, self.board = self.board, None
            atexit.unregister(self._stop_board)
            board.stop()

    def _inner(self) -> TcpLink:
        if self._tcp is None:
            raise LinkError(f"{self.target}: link is not open")
        return self._tcp

    def write(self, data: bytes) -> None:
        self._inner().write(data)

    def _read(self, timeout: float | None) -> bytes:
        return self._inner().read(timeout)


_SERIAL_TARGET = re.compile(r"serial:(?P<device>[^@]+)(?:@(?P<baud>[0-9]+))?")
_TCP_TARGET = re.compile(r"tcp:(?P<host>\[[^\]]+\]|[^:]+):(?P<port>[0-9]+)")


def is_sim_target(target: str) -> bool:
    """Whether `target` names the virtual board (`sim` or `sim:SIMULATOR`)."""
    return target == "sim" or target.startswith("sim:")


def parse_target(target: str, chip: object | None = None) -> Link:
    """The (unopened) link a target string names; LinkTargetError with the expected syntax if it is malformed."""
    if is_sim_target(target):
        return SimLink(chip, simulator=target.partition(":")[2] or "verilator")
    if match := _SERIAL_TARGET.fullmatch(target):
        baud = int(match["baud"]) if match["baud"] else DEFAULT_BAUD
        if baud <= 0:
            raise LinkTargetError(f"bad link target {target!r}: the baud rate must be positive")
        return SerialLink(match["device"], baud)
    if match := _TCP_TARGET.fullmatch(target):
        port = int(match["port"])
        if not 0 < port < 65536:
            raise LinkTargetError(f"bad link target {target!r}: port {port} is not in 1..65535")
        return TcpLink(match["host"].strip("[]"), port)
    raise LinkTargetError(f"bad link target {target!r}: expected {TARGET_SYNTAX}")


def open_link(target: str, chip: object | None = None) -> Link:
    """Parse `target` and open the link (see the module contract). `chip` only matters for `sim` targets."""
    return parse_target(target, chip).open()
