"""A faithful Python stand-in for the chip behind a Link, for the host OS tests (not a test file itself).

Bytes from the host go into the bridge's reference model (`tessera.sim.bridge_model.BridgeModel`); the bridge
drives golden tile models (`tessera.sim.model.TileModel`) whose message units run on the network model
(`tessera.sim.noc_model`). The message counters (STATUS words 5 and 6) count as the chip's do (hw/tile_node.py,
docs/protocol.md "STATUS"): a receive of the tile's own code that opened a message, a send of its own code the
network took; 16 bits, wrapping; all three counters restart from 0 at RESET. A tile that traps (any cause but
BREAKPOINT) sends a DOWN report (tag DOWN_TAG, words cause and pc, source = the tile) to its supervisor address,
as docs/host-os.md asks of the chip. The chip
advances only while the host reads (`FakeChipLink.read`), so runs are deterministic apart from wall-clock
timeouts. `tamper_out` / `tamper_in` let a test damage bytes in either direction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tessera.firmware.isa import Cause, TileState
from tessera.hw.io_node import IoTag
from tessera.hw.noc_layouts import HOST_NODE, MessageOp
from tessera.os.chip import DOWN_TAG
from tessera.os.link import Link
from tessera.os.protocol import ChipInfo, ConfigRegister, Feature, Status
from tessera.sim.bridge_model import BridgeModel
from tessera.sim.model import MessageReply, TileModel
from tessera.sim.noc_model import Message, NocModel, NodeUnit

#: Cycles the chip advances per `read` call when it has nothing to say.
CYCLES_PER_READ = 2000
#: Width of the chip's message counters (TesseraChip's `counter_bits`).
COUNTER_MASK = 0xFFFF
RECEIVES = (MessageOp.RECV, MessageOp.TRYRECV, MessageOp.RECVT)
SENDS = (MessageOp.SEND, MessageOp.TRYSEND)


class CountingUnit(NodeUnit):
    """A tile's message unit that also keeps the tile node's message counters in `chip`."""

    def __init__(self, chip: FakeChip, address: int) -> None:
        super().__init__(chip.noc, address)
        self.chip = chip
        self.address = address

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None:
        reply = super().execute(funct3, funct7, rs1, rs2)
        if reply is not None and not reply.fault:
            op = MessageOp.decode(funct3, funct7)
            if op in RECEIVES and reply.result != 0:
                self.chip.messages_in[self.address] = (self.chip.messages_in[self.address] + 1) & COUNTER_MASK
            elif op in SENDS and reply.result & 1:
                self.chip.messages_out[self.address] = (self.chip.messages_out[self.address] + 1) & COUNTER_MASK
        return reply


class FakeTiles:
    """The bridge's TileArray over golden tile models (plus the config registers the chip keeps per tile)."""

    def __init__(self, chip: FakeChip) -> None:
        self.chip = chip

    def busy(self, tile: int) -> bool:
        return self.chip.tiles[tile].state in (TileState.RUNNING, TileState.SLEEPING)

    def read_word(self, tile: int, word_address: int) -> int:
        return self.chip.tiles[tile].read_word(4 * word_address)

    def write_word(self, tile: int, word_address: int, value: int) -> None:
        self.chip.tiles[tile].load([value], 4 * word_address)
        self.chip.written.add(tile)

    def read_status_word(self, tile: int, index: int) -> int:
        t = self.chip.tiles[tile]
        cycle = self.chip.noc.cycle
        words = (int(t.state) | (t.cause << 8), t.pc, cycle & 0xFFFF_FFFF, cycle >> 32, t.instret & 0xFFFF_FFFF,
                 self.chip.messages_in[tile], self.chip.messages_out[tile])
        return words[index]

    def run(self, tile: int) -> None:
        t = self.chip.tiles[tile]
        if t.state in (TileState.HALTED, TileState.TRAPPED):
            t.state = TileState.RUNNING
        self.chip.control_log.append(("run", tile))

    def halt(self, tile: int) -> None:
        self.chip.tiles[tile].halt()
        self.chip.units[tile].abandon()
        self.chip.control_log.append(("halt", tile))

    def reset(self, tile: int) -> None:
        self.chip.tiles[tile].reset()  # clears instret
        self.chip.units[tile].abandon()
        self.chip.messages_in[tile] = self.chip.messages_out[tile] = 0
        self.chip.control_log.append(("reset", tile))

    def write_config(self, tile: int, register: ConfigRegister, value: int) -> None:
        self.chip.config[tile][register] = value
        if register is ConfigRegister.PERMISSIONS:
            count = len(self.chip.tiles)
            allowed = [t for t in range(count) if value >> t & 1] + ([HOST_NODE] if value >> count & 1 else [])
            self.chip.noc.set_permissions(tile, allowed)


class FakeHostPort:
    """The bridge's Network: the host node's message unit."""

    def __init__(self, chip: FakeChip) -> None:
        self.chip = chip

    def try_send(self, dest: int, tag: int, words: tuple[int, ...]) -> tuple[Status, bytes]:
        if dest == self.chip.info.io_node:  # the I/O node takes every message at once (hw/io_node.py)
            if tag == IoTag.SET_LEDS:
                self.chip.leds = words[0] & 0xFF
            return Status.OK, b""
        if self.chip.noc.node(HOST_NODE).send_busy or self.chip.host_launching:
            return Status.NET_BUSY, b""
        self.chip.noc.send(HOST_NODE, Message(HOST_NODE, dest, tag, words))
        self.chip.host_launching = True
        return Status.OK, b""


class FakeChip:
    """`io`: the chip has the I/O node (address `tiles`); of its services only the LEDs are modelled (`leds`)."""

    def __init__(self, tiles: int = 4, mem_bytes: int = 1024, mailbox_depth: int = 4, max_words: int = 32,
                 io: bool = False) -> None:
        self.leds = 0
        self.noc = NocModel(tiles, depth=mailbox_depth)
        self.messages_in = [0] * tiles
        self.messages_out = [0] * tiles
        self.units = [CountingUnit(self, t) for t in range(tiles)]
        self.tiles = [TileModel(mem_bytes, t, self.units[t], cycle_source=lambda: self.noc.cycle) for t in range(tiles)]
        self.config: list[dict[ConfigRegister, int]] = [{} for _ in range(tiles)]
        self.host_launching = False
        self.control_log: list[tuple[str, int]] = []  # every run/halt/reset the bridge executed
        self.written: set[int] = set()  # tiles whose memory the host wrote
        self.downs_sent: list[tuple[int, int, int]] = []
        self.info = ChipInfo(1, tiles, mem_bytes.bit_length() - 1, max_words, 4, tiles + 1, 1, mailbox_depth,
                             HOST_NODE, Feature.SUPERVISOR | Feature.SEND_PERMISSIONS | Feature.MESSAGE_UNIT
                             | Feature.MESSAGE_COUNTERS | (Feature.IO_NODE if io else Feature(0)), 12_000_000)
        self.bridge = BridgeModel(self.info, FakeTiles(self), FakeHostPort(self))
        self._to_host: deque[tuple[int, int, tuple[int, ...]]] = deque()
        self.out = bytearray()

    def feed(self, data: bytes) -> None:
        self.out += self.bridge.feed(data)

    def advance(self, cycles: int) -> None:
        for _ in range(cycles):
            for number, tile in enumerate(self.tiles):
                if tile.state in (TileState.RUNNING, TileState.SLEEPING):
                    tile.step()
                    if tile.state is TileState.TRAPPED and tile.cause != Cause.BREAKPOINT:
                        self._down(number, tile)
            self.noc.step()
            self.host_launching = False
            host = self.noc.node(HOST_NODE)
            if host.queue and self.bridge._pending is None and not self.bridge._inbox:
                message = self.noc.open(HOST_NODE)
                self._to_host.append((message.src, message.tag, message.words))
            while self._to_host and self.bridge._pending is None and not self.bridge._inbox:
                self.out += self.bridge.deliver(*self._to_host.popleft())
            if self.out:
                return

    def inject_fault(self, number: int, cause: Cause) -> None:
        """An outside fault (as the watchdog raises it): the tile traps and reports DOWN."""
        self.tiles[number].fault_in(cause)
        self._down(number, self.tiles[number])

    def _down(self, number: int, tile: TileModel) -> None:
        self.downs_sent.append((number, tile.cause, tile.pc))
        if self.config[number].get(ConfigRegister.SUPERVISOR) == HOST_NODE:
            self._to_host.append((number, DOWN_TAG, (tile.cause, tile.pc)))


class FakeChipLink(Link):
    """A Link whose far end is a FakeChip."""

    def __init__(self, chip: FakeChip) -> None:
        super().__init__("fake:chip")
        self.chip = chip
        self.tamper_out: Callable[[bytes], bytes] | None = None  # chip -> host bytes
        self.tamper_in: Callable[[bytes], bytes] | None = None  # host -> chip bytes

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.chip.feed(self.tamper_in(data) if self.tamper_in else data)

    def _read(self, timeout: float | None) -> bytes:
        if not self.chip.out:
            self.chip.advance(CYCLES_PER_READ)
        data, self.chip.out = bytes(self.chip.out), bytearray()
        return self.tamper_out(data) if self.tamper_out and data else data


WORKER = '''"""Worker: tag 1 replies msg[0] + 1, tag 2 logs msg[0], tag 99 faults (assertion)."""

from tessera.os.service_api import Message, Service, log, reply


class Worker(Service):
    handled: int = 0

    def handle(self, msg: Message) -> None:
        self.handled += 1
        assert msg.tag != 99, "poison"
        if msg.tag == 2:
            log(msg[0])
        else:
            reply(msg[0] + 1)
'''

#: Tags the worker understands.
ECHO_PLUS_ONE, LOG, POISON = 1, 2, 99


def write_system(folder: Path, *, strategy: str = "one_for_one", group_restarts: int = 3, root_restarts: int = 3,
                 extra_services: str = "", extra_files: dict[str, str] | None = None) -> Path:
    """A 4-tile system: root (one_for_one) supervises `solo` and `group` (`strategy`) of a, b, c, all workers.
    Returns the built image's path."""
    from tessera.os.build import build_image
    from tessera.os.image import write_image
    from tessera.os.manifest import load_manifest

    (folder / "worker.py").write_text(WORKER)
    for name, text in (extra_files or {}).items():
        (folder / name).write_text(text)
    services = "".join(f'[services.{name}]\nsource = "worker.py"\ntile = {tile}\n'
                       for tile, name in enumerate(("solo", "a", "b", "c")))
    (folder / "app.toml").write_text(f"""[app]
name = "t"
[chip]
tiles = 4
mem_bytes = 1024
mailbox_depth = 4
{services}{extra_services}
[supervisors.root]
strategy = "one_for_one"
max_restarts = {root_restarts}
period = 60
children = ["solo", "group"]
[supervisors.group]
strategy = "{strategy}"
max_restarts = {group_restarts}
period = 60
children = ["a", "b", "c"]
[[messages]]
to = "solo"
tag = 1
words = [41]
""")
    path = folder / "app.tsi"
    write_image(build_image(load_manifest(folder / "app.toml")), path)
    return path


class FakeBoardServer:
    """The fake chip behind a TCP port (one host at a time), so `--target tcp:127.0.0.1:PORT` reaches it through
    the real TcpLink. Runs in a daemon thread until `close`."""

    def __init__(self, chip: FakeChip) -> None:
        import socket
        import threading

        self.chip = chip
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.target = f"tcp:127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import select

        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection:
                while not self._stop.is_set():
                    ready, _, _ = select.select([connection], [], [], 0)
                    if ready:
                        data = connection.recv(65536)
                        if not data:
                            break
                        self.chip.feed(data)
                    if not self.chip.out:
                        self.chip.advance(200)
                    if self.chip.out:
                        connection.sendall(bytes(self.chip.out))
                        self.chip.out.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()


def pump_until(runner, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Let `runner` handle what the chip sends until `condition()` holds (AssertionError after `timeout` s)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        for message in runner.chip.poll(0.02):
            runner.handle(message)


@contextmanager
def serving(runner, target: str) -> Iterator[None]:
    """`runner` serving in a thread with a session for `target`, as `tessera run` does; stopped on exit."""
    import threading

    from tessera.os.session import SessionServer

    server = SessionServer(runner, target)
    thread = threading.Thread(target=runner.serve, kwargs={"idle": server.idle}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        runner.stopped_report = "test over"
        thread.join()
        server.close()
