"""What the demos' host side shares: building a demo image, one booted demo system (`DemoSystem`), a full chip
reset, and a small PNG writer.

    image = build_demo("pingpong", Path("build/demo"), chip.info)
    system = DemoSystem(chip, image, events=log)       # boots it (load, verify, start under supervision)
    counter, cycles, fastest, slowest = system.call("ping", [20])
    system.close()                                     # halts every service tile

Messages a demo does not wait for (logs, DOWN reports, snapshots, other output) go to the runner, which prints
them on `events` and executes supervision decisions; so a demo that waits for a reply still sees crashes
handled while it waits.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from tessera.os.build import build_image
from tessera.os.chip import Chip, Incoming
from tessera.os.errors import TesseraError
from tessera.os.image import read_image, write_image
from tessera.os.link import Link, SimLink
from tessera.os.manifest import ChipSpec as ManifestChip, Manifest, load_manifest
from tessera.os.persist import SNAPSHOT_TAG
from tessera.os.protocol import ChipInfo
from tessera.os.runner import Runner
from tessera.os.supervision import SupervisorSpec

#: The demo systems: one folder each with app.toml and its services.
DEMOS_ROOT = Path(__file__).resolve().with_name("demos")
#: Wall-clock limit for one reply; generous because the fake chip and Icarus are slow.
REPLY_TIMEOUT_S = 120.0
#: ... and the least of the chip's own time (cycles over its clock) a reply may take: a wait is overdue only once
#: both have passed. Hardware runs at its clock, so there the wall-clock limit decides. A simulated chip runs far
#: slower (the iCEBreaker's bit-core chip under Verilator at ~1/60 of its 24 MHz), and this gives it the cycles the
#: slowest demo step takes on the board: Mandelbrot's picture on one bit-core tile, 55 M cycles (2.3 s).
REPLY_CHIP_S = 10.0
#: ... but never longer than this: a chip that has not run REPLY_CHIP_S of its own time by then (Icarus is slower
#: than Verilator still) is stuck or too slow to wait for.
REPLY_LONGEST_S = 1800.0


class DemoError(TesseraError):
    """A demo did not get the answer it waited for."""


#: Services a demo can do without, the first to go first: the Mandelbrot demo runs with as many workers as fit.
OPTIONAL_SERVICES: dict[str, tuple[str, ...]] = {"mandelbrot": ("w7", "w6", "w5", "w4", "w3", "w2")}


def demo_tiles(name: str) -> int:
    """The fewest tiles demo `name` runs on: one per service of its manifest that it cannot do without."""
    return len(load_manifest(DEMOS_ROOT / name / "app.toml").services) - len(OPTIONAL_SERVICES.get(name, ()))


def build_demo(name: str, folder: Path, chip: ChipInfo | None = None) -> Path:
    """Build `os/demos/<name>/app.toml` into `folder/<name>.tsi`; returns the image path. For `chip` (an IDENTIFY
    reply) the image targets that chip's tile count, tile memory and mailbox depth instead of the manifest's, so
    a demo runs on any chip its services fit (a board's, as well as the simulated chip the manifests name); on a
    chip with fewer tiles than services it leaves out the demo's optional services (OPTIONAL_SERVICES) that do not
    fit."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.tsi"
    manifest = load_manifest(DEMOS_ROOT / name / "app.toml")
    if chip is not None:
        target = ManifestChip(tiles=chip.tile_count, mem_bytes=chip.mem_bytes, mailbox_depth=chip.mailbox_depth)
        excess = max(0, len(manifest.services) - chip.tile_count)
        manifest = without_services(dataclasses.replace(manifest, chip=target),
                                    OPTIONAL_SERVICES.get(name, ())[:excess])
    write_image(build_image(manifest), path)
    return path


def without_services(manifest: Manifest, names: Sequence[str]) -> Manifest:
    """`manifest` without the services `names`: gone from the services, from every service's `sends` and from the
    supervision tree."""
    if not names:
        return manifest
    dropped = set(names)

    def prune(supervisor: SupervisorSpec) -> SupervisorSpec:
        children = tuple(prune(child) if isinstance(child, SupervisorSpec) else child
                         for child in supervisor.children if child not in dropped)
        return dataclasses.replace(supervisor, children=children)

    services = {name: dataclasses.replace(spec, sends=tuple(to for to in spec.sends if to not in dropped))
                for name, spec in manifest.services.items() if name not in dropped}
    messages = tuple(message for message in manifest.messages if message.to not in dropped)
    return dataclasses.replace(manifest, services=services, tree=prune(manifest.tree), messages=messages)


def is_output(message: Incoming) -> bool:
    """A service's own message to the host (not a log line, DOWN report or snapshot)."""
    return not (message.is_log or message.is_down or message.tag == SNAPSHOT_TAG)


class ReplyDeadline:
    """When a wait that starts now is overdue: once `wall_s` seconds have passed on `clock` and the chip has run
    `chip_s` seconds of its own time (`cycles()` reads its cycle counter, which runs at `clock_hz`), or once
    `longest_s` seconds have passed whatever the chip did. The counter is read at the start and then at most once
    a second after `wall_s`."""

    def __init__(self, cycles: Callable[[], int], clock_hz: int, *, wall_s: float = REPLY_TIMEOUT_S,
                 chip_s: float = REPLY_CHIP_S, longest_s: float = REPLY_LONGEST_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cycles, self._clock = cycles, clock
        self._started_cycle, self._started = cycles(), clock()
        self._wall_s, self._longest_s = wall_s, longest_s
        self._chip_cycles = round(chip_s * clock_hz)
        self._clock_hz = clock_hz
        self.chip_seconds = 0.0  # of the chip's own time, as last read
        self._next_read = self._started + wall_s

    @property
    def waited(self) -> float:
        return self._clock() - self._started

    def overdue(self) -> bool:
        now = self._clock()
        if now - self._started < self._wall_s:
            return False
        if now - self._started >= self._longest_s:
            return True
        if now >= self._next_read:
            self._next_read = now + 1.0
            ran = self._cycles() - self._started_cycle
            self.chip_seconds = ran / self._clock_hz
            return ran >= self._chip_cycles
        return False

    def describe(self) -> str:
        """How long the wait was, for its error message."""
        return f"{self.waited:.0f} s (the chip ran {self.chip_seconds:.3g} s of its own time)"


class DemoSystem:
    """A demo image booted on `chip` under a Runner whose event lines go to `events`."""

    def __init__(self, chip: Chip, image_path: Path, *, events: TextIO) -> None:
        self.runner = Runner(chip, read_image(image_path), image_path=image_path, out=events,
                             progress=io.StringIO())
        self.runner.boot()
        self.chip = chip

    def tile(self, service: str) -> int:
        return self.runner.service(service).tile.tile

    def send(self, service: str, words: Sequence[int], tag: int = 0) -> None:
        self.chip.send(self.tile(service), tag, [word & 0xFFFF_FFFF for word in words])

    def deadline(self, timeout: float = REPLY_TIMEOUT_S) -> ReplyDeadline:
        """A wait's deadline from now: `timeout` wall-clock seconds and REPLY_CHIP_S of the chip's own time."""
        return ReplyDeadline(lambda: self.chip.status(0).cycle, self.chip.info.clock_hz, wall_s=timeout)

    def wait(self, predicate: Callable[[Incoming], bool], what: str,
             timeout: float = REPLY_TIMEOUT_S) -> Incoming:
        """The first message matching `predicate`; every other message is handled by the runner meanwhile."""
        deadline = self.deadline(timeout)
        while not deadline.overdue():
            messages = self.chip.poll(0.05)
            for index, message in enumerate(messages):
                if predicate(message):
                    self.chip.inbox.extendleft(reversed(messages[index + 1:]))  # for the next wait, in order
                    return message
                self.runner.handle(message)
        raise DemoError(f"no {what} within {deadline.describe()}")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = REPLY_TIMEOUT_S) -> None:
        """Handle messages until `condition()` holds."""
        deadline = self.deadline(timeout)
        while not condition():
            if deadline.overdue():
                raise DemoError(f"{what} did not happen within {deadline.describe()}")
            for message in self.chip.poll(0.05):
                self.runner.handle(message)

    def output_from(self, service: str, tag: int | None = None) -> Callable[[Incoming], bool]:
        tile = self.tile(service)
        return lambda m: m.source == tile and is_output(m) and (tag is None or m.tag == tag)

    def call(self, service: str, words: Sequence[int], tag: int = 0,
             timeout: float = REPLY_TIMEOUT_S) -> tuple[int, ...]:
        """Send a request and return the words of the service's next own message."""
        self.send(service, words, tag)
        return self.wait(self.output_from(service), f"reply from {service}", timeout).words

    def close(self) -> None:
        self.runner.shutdown()


def signed(word: int) -> int:
    """A 32-bit word as the signed value a service computed."""
    return word - (1 << 32) if word & 0x8000_0000 else word


def reset_chip(link: Link) -> Chip:
    """A full chip reset as the host can cause it: the virtual board's reset line when the target is the virtual
    board, then on any target every tile halted, reset and its whole memory cleared. Returns a new client (a new
    host session) on the same link."""
    if isinstance(link, SimLink) and link.endpoints is not None:
        from tessera.sim.virtual_board import control

        control(link.endpoints, "reset")
    chip = Chip(link)
    zeros = bytes(chip.info.mem_bytes)
    for tile in range(chip.info.tile_count):
        chip.halt(tile)
        chip.reset(tile)
        chip.write_memory(tile, 0, zeros)
    return chip


def png_bytes(pixels: Sequence[Sequence[int]]) -> bytes:
    """An 8-bit greyscale PNG of `pixels` (rows of 0..255), written with zlib and struct only."""
    height = len(pixels)
    width = len(pixels[0]) if height else 0
    if not width or any(len(row) != width for row in pixels):
        raise ValueError("a PNG needs at least one pixel and rows of equal length")
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)  # filter type 0 (None) on every scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
