"""The supervision tree: its shape (`SupervisorSpec`) and the host supervisor's state machine (`Supervision`).

The tree has OTP semantics. Each supervisor has a restart strategy and a restart intensity:

- `one_for_one`: only the failed child restarts.
- `one_for_all`: every child of that supervisor restarts.
- `rest_for_one`: the failed child and the children started after it restart (in start order).
- intensity: if a supervisor restarts more than `max_restarts` times within `period_ms`, it gives up: its whole
  subtree is stopped and its parent sees the supervisor itself fail (and applies its own strategy to it). Past the
  root the system stops.

Start order is the depth-first manifest order of the tree. `Supervision` is a pure state machine: `down(time, tile,
cause)` returns what the host must do as data (`Decision`): stop these tiles, reload and start those in this
order, or stop the system with a report; every event also yields log records. Nothing here touches the chip.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@dataclass(frozen=True)
class SupervisorSpec:
    """One supervisor: its children in start order are service names (str) or nested supervisors."""

    name: str
    strategy: Strategy
    max_restarts: int
    period_ms: int
    children: tuple[str | SupervisorSpec, ...]

    def services(self) -> Iterator[str]:
        """Every service of this subtree in start order (depth first)."""
        for child in self.children:
            if isinstance(child, SupervisorSpec):
                yield from child.services()
            else:
                yield child

    def supervisors(self) -> Iterator[SupervisorSpec]:
        """This supervisor and every nested one, parents before children."""
        yield self
        for child in self.children:
            if isinstance(child, SupervisorSpec):
                yield from child.supervisors()


# -- the state machine ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StopTiles:
    """Halt these tiles (their services are terminated), in this order (reverse start order)."""

    tiles: tuple[int, ...]


@dataclass(frozen=True)
class RestartTiles:
    """Reload each tile's image and start it, one after the other in this order (start order)."""

    tiles: tuple[int, ...]


@dataclass(frozen=True)
class StopSystem:
    """The root supervisor gave up: every tile is stopped (see the StopTiles before it); `report` says why."""

    report: str


Action = StopTiles | RestartTiles | StopSystem


class Event(enum.Enum):
    STARTED = "started"
    DOWN = "down"
    IGNORED = "ignored"  # a DOWN for a service that is not running (already stopped, or the system stopped)
    STOPPED = "stopped"  # terminated by its supervisor as part of a restart or a give-up
    RESTARTED = "restarted"
    GAVE_UP = "gave up"  # a supervisor exceeded its restart intensity
    SYSTEM_STOPPED = "system stopped"


@dataclass(frozen=True)
class LogRecord:
    """One line of the supervision log. `tile` and `service` are None for events of a supervisor itself; `cause`
    is the cause of the DOWN that led to the event, `detail` explains the event."""

    time_ms: int
    event: Event
    tile: int | None
    service: str | None
    supervisor: str
    cause: str
    detail: str = ""

    def __str__(self) -> str:
        who = f"{self.service} (tile {self.tile})" if self.service is not None else f"supervisor {self.supervisor}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.time_ms / 1000:10.3f} s  {who}: {self.event.value}: {self.cause}{detail}"


@dataclass(frozen=True)
class Decision:
    """What the host must do about one event, in order, and what to log."""

    actions: tuple[Action, ...]
    log: tuple[LogRecord, ...]


class Supervision:
    """The host's supervisor for one tree: feed it DOWN events, execute the decisions it returns.

    `placement` maps every service to its tile. Times are milliseconds on any monotonic clock; they must not go
    backwards. Nothing runs until `start`.
    """

    def __init__(self, tree: SupervisorSpec, placement: dict[str, int]) -> None:
        self.tree = tree
        self.placement = dict(placement)
        self.start_order = tuple(tree.services())
        missing = set(self.start_order) - set(placement)
        if missing:
            raise ValueError(f"services without a tile: {', '.join(sorted(missing))}")
        self._index = {name: index for index, name in enumerate(self.start_order)}
        self._by_tile = {placement[name]: name for name in self.start_order}
        self._parent: dict[str, SupervisorSpec] = {}  # child name (service or supervisor) -> its supervisor
        for supervisor in tree.supervisors():
            for child in supervisor.children:
                self._parent[_name(child)] = supervisor
        self._restarts: dict[str, list[int]] = {s.name: [] for s in tree.supervisors()}
        self.running: set[str] = set()
        self.stopped = False  # past the root: nothing restarts any more
        self._last_time = 0

    def start(self, time_ms: int) -> Decision:
        """Start every service in start order (the system's first start)."""
        self._advance(time_ms)
        self.running = set(self.start_order)
        log = tuple(LogRecord(time_ms, Event.STARTED, self.placement[name], name, self._parent[name].name, "start",
                              "first start")
                    for name in self.start_order)
        return Decision((RestartTiles(tuple(self.placement[name] for name in self.start_order)),), log)

    def down(self, time_ms: int, tile: int, cause: str) -> Decision:
        """The tile `tile` stopped with `cause` (a DOWN message): decide what restarts."""
        self._advance(time_ms)
        service = self._by_tile.get(tile)
        if service is None:
            raise ValueError(f"DOWN from tile {tile}, which runs no supervised service")
        supervisor = self._parent[service]
        if self.stopped or service not in self.running:
            why = "the system is stopped" if self.stopped else "the service is not running"
            return Decision((), (LogRecord(time_ms, Event.IGNORED, tile, service, supervisor.name, cause, why),))
        log = [LogRecord(time_ms, Event.DOWN, tile, service, supervisor.name, cause)]
        self.running.discard(service)
        stops: list[str] = []
        child: str | SupervisorSpec = service
        while True:
            if self._within_intensity(supervisor, time_ms):
                restarts = self._restart(supervisor, child, stops, log, time_ms, cause)
                return Decision(self._actions(stops, restarts), tuple(log))
            history = self._restarts[supervisor.name]
            log.append(LogRecord(time_ms, Event.GAVE_UP, None, None, supervisor.name, cause,
                                 f"{len(history)} restarts within {supervisor.period_ms / 1000:g} s, more than "
                                 f"{supervisor.max_restarts} allowed"))
            self._terminate(supervisor.services(), stops, log, time_ms, supervisor.name, cause,
                            f"{supervisor.name} gave up")
            parent = self._parent.get(supervisor.name)
            if parent is None:
                self.stopped = True
                report = (f"supervisor {supervisor.name} gave up at {time_ms / 1000:.3f} s after {service} "
                          f"(tile {tile}) went down: {cause}; the system is stopped")
                log.append(LogRecord(time_ms, Event.SYSTEM_STOPPED, None, None, supervisor.name, cause, report))
                return Decision(self._actions(stops, []) + (StopSystem(report),), tuple(log))
            child, supervisor = supervisor, parent

    # -- internals ---------------------------------------------------------------------------------------------

    def _advance(self, time_ms: int) -> None:
        if time_ms < self._last_time:
            raise ValueError(f"time went backwards: {time_ms} ms after {self._last_time} ms")
        self._last_time = time_ms

    def _within_intensity(self, supervisor: SupervisorSpec, time_ms: int) -> bool:
        """Count one more restart; False if that makes more than max_restarts within the period (OTP's rule:
        a restart at `then` still counts at `now` while now <= then + period)."""
        history = [then for then in self._restarts[supervisor.name] if time_ms <= then + supervisor.period_ms]
        history.append(time_ms)
        self._restarts[supervisor.name] = history
        return len(history) <= supervisor.max_restarts

    def _restart(self, supervisor: SupervisorSpec, failed: str | SupervisorSpec, stops: list[str],
                 log: list[LogRecord], time_ms: int, cause: str) -> list[str]:
        """Apply the supervisor's strategy to its failed child; returns the services to restart, in order."""
        children = list(supervisor.children)
        position = children.index(failed)
        if supervisor.strategy is Strategy.ONE_FOR_ONE:
            affected = [failed]
        elif supervisor.strategy is Strategy.ONE_FOR_ALL:
            affected = children
        else:
            affected = children[position:]
        services = [name for child in affected for name in _services(child)]
        why = f"{supervisor.name} ({supervisor.strategy.value}) restarts after {_name(failed)} failed"
        self._terminate(services, stops, log, time_ms, supervisor.name, cause, why)
        for child in affected:  # a restarted supervisor is a new one: its restart history starts empty
            if isinstance(child, SupervisorSpec):
                for nested in child.supervisors():
                    self._restarts[nested.name] = []
        for name in services:
            self.running.add(name)
            log.append(LogRecord(time_ms, Event.RESTARTED, self.placement[name], name, self._parent[name].name, cause,
                                 why))
        return services

    def _terminate(self, services: Iterable[str], stops: list[str], log: list[LogRecord], time_ms: int,
                   supervisor: str, cause: str, why: str) -> None:
        for name in sorted(services, key=self._index.__getitem__, reverse=True):
            if name in self.running:
                self.running.discard(name)
                stops.append(name)
                log.append(LogRecord(time_ms, Event.STOPPED, self.placement[name], name, supervisor, cause, why))

    def _actions(self, stops: list[str], restarts: list[str]) -> tuple[Action, ...]:
        actions: list[Action] = []
        if stops:
            ordered = sorted(stops, key=self._index.__getitem__, reverse=True)
            actions.append(StopTiles(tuple(self.placement[name] for name in ordered)))
        if restarts:
            actions.append(RestartTiles(tuple(self.placement[name] for name in restarts)))
        return tuple(actions)


def _name(child: str | SupervisorSpec) -> str:
    return child.name if isinstance(child, SupervisorSpec) else child


def _services(child: str | SupervisorSpec) -> list[str]:
    return list(child.services()) if isinstance(child, SupervisorSpec) else [child]
