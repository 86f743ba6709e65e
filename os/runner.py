"""The run loop: bring a runtime image up on a chip, keep it alive under its supervision tree, bring it down.

    runner = Runner(chip, image, image_path=Path("app.tsi"))
    runner.boot()            # identify check, load + verify, configure, start in supervision order, initial msgs
    runner.serve()           # stream logs and messages, handle DOWN reports, until Ctrl-C or the system stops
    runner.shutdown()        # halt every service tile, last started first

Every event (start, DOWN, stop, restart, give-up, system stop) is one line on `out` and in the event log next to
the image (`app.log` for `app.tsi`, read by `tessera logs`), with the time since boot, tile, service and cause.
Supervision decisions come from `tessera.os.supervision.Supervision`; this module only executes them, so a tile
outside the affected subtree never receives a command. Nothing here knows whether the chip is simulated.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from tessera.os.chip import Chip, Down, Incoming, describe_status
from tessera.os.commands import message_columns
from tessera.os.errors import TesseraError
from tessera.os.image import NameKind, RuntimeImage, TileImage
from tessera.os.protocol import Feature
from tessera.os.persist import Snapshots, write_words
from tessera.os.reload import (
    BOUNDARY_TIMEOUT_S,
    Handover,
    ReloadError,
    check_compatible,
    hand_over,
    reach_boundary,
)
from tessera.os.supervision import (
    Decision,
    Event,
    LogRecord,
    RestartTiles,
    StopSystem,
    StopTiles,
    Supervision,
)

#: How long one `serve` iteration waits for the chip before it looks at its other work.
POLL_S = 0.05
PROGRESS_WIDTH = 30


class ChipMismatch(TesseraError):
    """The chip on the link is not the chip the image was built for."""


@dataclass
class ServiceState:
    """What the host knows about one service beyond the chip's own status."""

    tile: TileImage
    restarts: int = 0
    running: bool = False
    last_cause: str = ""


def event_log_path(image_path: Path) -> Path:
    """Where `tessera run` appends its events for `tessera logs`: next to the image, suffix `.log`."""
    return image_path.with_suffix(".log")


class Runner:
    """One image on one chip. `out` receives event, log and message lines; `progress` (stderr by default) the
    load progress bar. `clock` gives seconds (monotonic). `on_message` may claim a message (return True) before
    the runner prints it: the session server uses it for `tessera call` replies; `watchers` see every message."""

    def __init__(self, chip: Chip, image: RuntimeImage, *, image_path: Path | None = None,
                 out: TextIO | None = None, progress: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.chip = chip
        self.image = image
        self.image_path = image_path
        self.out = out if out is not None else sys.stdout
        self.progress = progress if progress is not None else sys.stderr
        self.clock = clock
        self.services = {tile.service: ServiceState(tile) for tile in image.tiles}
        self.by_tile = {tile.tile: tile for tile in image.tiles}
        self.supervision = Supervision(image.tree, {tile.service: tile.tile for tile in image.tiles})
        self.snapshots = Snapshots(image, image_path) if image_path is not None else None
        self.on_message: Callable[[Incoming], bool] | None = None
        #: Called with every message the chip pushes, before it is handled (`tessera trace` records them).
        self.watchers: list[Callable[[Incoming], None]] = []
        self.stopped_report: str | None = None
        self._t0 = clock()
        self._log_file = event_log_path(image_path).open("a", encoding="utf-8") if image_path else None

    # -- bring-up ---------------------------------------------------------------------------------------------

    def check_chip(self) -> None:
        """Refuse a chip whose parameters differ from the image's, naming each difference."""
        info, want = self.chip.info, self.image.chip
        if info.tile_count == 0:  # no image can fit it: an image has at least one tile, so rebuilding would not help
            raise ChipMismatch(f"the chip at {self.chip.link.target} has no tiles (the host link and the I/O node "
                               "only), so it runs no image: `tessera send led`, `tessera listen` and `tessera "
                               "identify` reach it without one")
        differences = [f"{name}: image {wanted}, chip {actual}" for name, wanted, actual in (
            ("tiles", want.tiles, info.tile_count),
            ("tile memory bytes", want.mem_bytes, info.mem_bytes),
            ("mailbox depth", want.mailbox_depth, info.mailbox_depth),
            ("host node", want.host_node, info.host_node),
        ) if wanted != actual]
        io_names = [entry.name for entry in self.image.names if entry.kind == NameKind.IO]
        if io_names and not info.features & Feature.IO_NODE:
            differences.append(f"I/O services: the image sends to {', '.join(io_names)}, the chip has no I/O node")
        if differences:
            raise ChipMismatch(f"the image {self._image_name()} was built for another chip than the one at "
                               f"{self.chip.link.target} ({'; '.join(differences)}): rebuild it with "
                               f"`tessera build` for this chip")

    def boot(self) -> None:
        """Check, quiesce, load and verify every tile, configure, start in supervision order, send the initial
        messages."""
        self.check_chip()
        for number in range(self.chip.info.tile_count):  # the image owns the whole chip: nothing old keeps running
            self.chip.halt(number)
            self.chip.reset(number)
        total = sum(len(tile.memory) for tile in self.image.tiles)
        done = 0
        for tile in self.image.tiles:
            self.chip.load(tile.tile, tile.memory,
                           progress=lambda count, base=done, t=tile: self._progress(base + count, total, t))
            done += len(tile.memory)
            self._configure(tile)
        self._progress(total, total, None, final=True)
        decision = self.supervision.start(self._now_ms())
        for record in decision.log:
            self._event(record)
        for action in decision.actions:
            assert isinstance(action, RestartTiles)
            for number in action.tiles:
                self._start(self.by_tile[number], reload=False)
        for message in self.image.messages:
            self.chip.send(message.address, message.tag, message.words)
            self._line(f"sent initial message to {message.to} (tile {message.address}) tag {message.tag}: "
                       f"{_words(message.words)}")

    # -- the loop ---------------------------------------------------------------------------------------------

    def serve(self, *, duration: float | None = None, idle: Callable[[], None] | None = None) -> int:
        """Handle what the chip sends until `duration` s pass (None: until Ctrl-C) or the system stops.

        `idle` runs between polls (the session server answers requests there). Returns 0, or 2 when the root
        supervisor gave up (the report was printed)."""
        deadline = None if duration is None else self.clock() + duration
        try:
            while self.stopped_report is None and (deadline is None or self.clock() < deadline):
                for message in self.chip.poll(POLL_S):
                    self.handle(message)
                    if self.stopped_report is not None:
                        break
                if idle is not None and self.stopped_report is None:
                    idle()
        except KeyboardInterrupt:
            self._line("interrupted: stopping the tiles")
        return 0 if self.stopped_report is None else 2

    def handle(self, message: Incoming) -> None:
        """Dispatch one message the chip pushed."""
        for watch in self.watchers:
            watch(message)
        if message.is_down:
            self.on_down(message.down())
        elif self.snapshots is not None and self.snapshots.accepts(message):
            self._snapshot(message)
        elif message.is_log:
            self._line(f"{self._who(message.source)}: log: {_words(message.words)}")
        elif self.on_message is None or not self.on_message(message):
            self._line(f"{self._who(message.source)}: message tag {message.tag}: {_words(message.words)}")

    def on_down(self, down: Down) -> None:
        tile = self.by_tile.get(down.tile)
        if tile is None:
            self._line(f"tile {down.tile}: DOWN ({down.cause_name} at pc {down.pc:#x}), but it runs no service")
            return
        cause = f"{down.cause_name} at pc {down.pc:#x}"
        self.services[tile.service].last_cause = cause
        self.execute(self.supervision.down(self._now_ms(), down.tile, cause))

    def execute(self, decision: Decision) -> None:
        """Carry out a supervision decision: log it, then stop, reload and start exactly the tiles it names."""
        for record in decision.log:
            self._event(record)
            if record.event is Event.RESTARTED and record.service is not None:
                self.services[record.service].restarts += 1
        for action in decision.actions:
            if isinstance(action, StopTiles):
                for number in action.tiles:
                    self._stop(self.by_tile[number])
            elif isinstance(action, RestartTiles):
                for number in action.tiles:
                    self._start(self.by_tile[number], reload=True)
            elif isinstance(action, StopSystem):
                self.stopped_report = action.report
                self._line(f"SYSTEM STOPPED: {action.report}")

    # -- operator commands (tessera stop/restart through the session) -------------------------------------------

    def stop_service(self, name: str) -> None:
        state = self.service(name)
        self._stop(state.tile)
        self.supervision.running.discard(name)
        self._event(LogRecord(self._now_ms(), Event.STOPPED, state.tile.tile, name, "host", "operator",
                              "tessera stop"))

    def restart_service(self, name: str) -> None:
        state = self.service(name)
        self._stop(state.tile)
        self._start(state.tile, reload=True)
        self.supervision.running.add(name)
        state.restarts += 1
        self._event(LogRecord(self._now_ms(), Event.RESTARTED, state.tile.tile, name, "host", "operator",
                              "tessera restart"))

    def reload_service(self, name: str, image: RuntimeImage, image_name: str,
                       timeout: float = BOUNDARY_TIMEOUT_S) -> str:
        """Replace `name`'s code with its build in `image` at a message boundary, handing its state over (see
        tessera.os.reload); no other tile receives a command. Returns a one-line summary."""
        state = self.service(name)
        old = state.tile
        new = check_compatible(self.image, image, name, image_name)
        if not state.running:
            raise ReloadError(f"{name} is not running: `tessera restart {name}` starts it (with its running code)")
        reach_boundary(self.chip, old.tile, self.handle, timeout)
        handover = hand_over(self.chip, old, new)
        self.image = replace(self.image, tiles=tuple(new if t.tile == new.tile else t for t in self.image.tiles))
        self.by_tile[new.tile] = new
        state.tile = new
        if new.persist and self.snapshots is not None and handover.words:
            self.snapshots.save(new, handover.words)  # a later restart of the new code restores this state
        self._start(new, reload=True, handover=handover)
        summary = handover.summary()
        self._line(f"reloaded: tile {new.tile} service {name} from {image_name}: {summary}")
        return summary

    def service(self, name: str) -> ServiceState:
        try:
            return self.services[name]
        except KeyError:
            raise TesseraError(f"no service {name!r} in {self._image_name()} (services: "
                               f"{', '.join(self.services)})") from None

    def ps(self) -> list[dict[str, object]]:
        """One row per service: tile, service, state, restarts, messages in/out, last DOWN cause."""
        rows: list[dict[str, object]] = []
        for state in sorted(self.services.values(), key=lambda s: s.tile.tile):
            status = self.chip.status(state.tile.tile)
            rows.append({"tile": state.tile.tile, "service": state.tile.service,
                         "state": describe_status(status) if state.running or status.state else "stopped",
                         "restarts": state.restarts, **message_columns(self.chip, status),
                         "last_down": state.last_cause})
        return rows

    def shutdown(self) -> None:
        """Halt every service tile, last started first."""
        for name in reversed(self.supervision.start_order):
            self._stop(self.services[name].tile)
        self._line("all tiles stopped")
        self.close()

    def close(self) -> None:
        """Close the event log; the tiles are left as they are."""
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # -- internals --------------------------------------------------------------------------------------------

    def _configure(self, tile: TileImage) -> None:
        self.chip.set_permissions(tile.tile, tile.permissions)
        self.chip.set_supervisor(tile.tile, tile.supervisor)

    def _start(self, tile: TileImage, *, reload: bool, handover: Handover | None = None) -> None:
        """(Reload,) configure, put the state back (`handover`, else a persistent service's snapshot), RUN."""
        if reload:
            self.chip.halt(tile.tile)
            self.chip.reset(tile.tile)
            self.chip.load(tile.tile, tile.memory)
            self._configure(tile)
        else:
            self.chip.reset(tile.tile)
        if handover is not None:
            write_words(self.chip, tile.tile, {**handover.words, **handover.start})
        elif tile.persist and self.snapshots is not None:
            restored = self.snapshots.restore(self.chip, tile)
            if restored.problem:
                self._line(f"{tile.service} (tile {tile.tile}): {restored.problem}")
            elif restored.words:
                self._line(f"{tile.service} (tile {tile.tile}): state restored ({restored.words} words)")
        self.chip.run(tile.tile)
        self.services[tile.service].running = True

    def _stop(self, tile: TileImage) -> None:
        self.chip.halt(tile.tile)
        self.services[tile.service].running = False

    def _snapshot(self, message: Incoming) -> None:
        assert self.snapshots is not None
        tile = self.by_tile.get(message.source)
        if tile is None or not tile.persist:
            who = self._who(message.source)
            self._line(f"{who}: snapshot ignored: the service is not marked persist")
            return
        received = self.snapshots.receive(tile, message)
        if received.problem:
            self._line(f"{tile.service} (tile {tile.tile}): {received.problem}")
        if received.saved is not None:
            self._line(f"{tile.service} (tile {tile.tile}): state saved to {received.saved}")

    def _who(self, node: int) -> str:
        tile = self.by_tile.get(node)
        return f"{tile.service} (tile {node})" if tile else f"node {node}"

    def _now_ms(self) -> int:
        return int((self.clock() - self._t0) * 1000)

    def _event(self, record: LogRecord) -> None:
        self._line(f"{record.event.value}: {_describe(record)}", time_ms=record.time_ms)

    def _line(self, text: str, *, time_ms: int | None = None) -> None:
        stamp = (self._now_ms() if time_ms is None else time_ms) / 1000
        line = f"{stamp:9.3f} s  {text}"
        print(line, file=self.out, flush=True)
        if self._log_file is not None:
            print(line, file=self._log_file, flush=True)

    def _progress(self, done: int, total: int, tile: TileImage | None, *, final: bool = False) -> None:
        filled = PROGRESS_WIDTH * done // max(total, 1)
        label = f"tile {tile.tile} {tile.service}" if tile else "loaded and verified"
        bar = "#" * filled + "." * (PROGRESS_WIDTH - filled)
        print(f"\rloading [{bar}] {done}/{total} bytes  {label:<24}", end="\n" if final else "",
              file=self.progress, flush=True)

    def _image_name(self) -> str:
        return str(self.image_path) if self.image_path is not None else repr(self.image.app)


def _describe(record: LogRecord) -> str:
    """`tile 3 service kv (supervisor workers): cause ILLEGAL_INSN at pc 0x40 (detail)`."""
    who = f"tile {record.tile} service {record.service}" if record.service else "-"
    detail = f" ({record.detail})" if record.detail else ""
    return f"{who} supervisor {record.supervisor}: cause {record.cause}{detail}"


def _words(words: tuple[int, ...]) -> str:
    return " ".join(str(word) for word in words)


__all__ = ["ChipMismatch", "Runner", "ServiceState", "event_log_path"]
