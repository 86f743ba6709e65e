"""Message traffic over a time window (`tessera trace`): what the host can observe, and the per-link load derived
from it.

What is observed (nothing here exists only for simulation; a board answers the same commands):
- each tile's message counters (STATUS words 5/6: messages its code received / sent; 16 bits, wrapping, restarted
  from 0 by RESET) and the chip's cycle counter, sampled every `interval` seconds (`counter_delta` tells a wrap
  from a restart);
- every message to the host (source, tag, words, time) and every message the host sent in the window.
What is not: which tile a tile's message went to, and which ring links it crossed. The chip has no per-link or
per-pair counters, so `estimate_pairs` derives the tile-to-tile traffic: the maximum-entropy matrix that agrees
with the observed counts (each tile's sends to tiles = its send counter minus its messages the host saw; each tile's
receives from tiles = its receive counter minus the host's messages to it) and uses only the pairs the image's send
permissions allow (iterative proportional fitting). Where a tile may send to one other tile only, this is exact.
`link_loads` then routes every pair over the ring (docs/network.md: tiles at positions 0..T-1, the I/O node if the
chip has one, then the host; one direction): a message's DATA slot crosses the links from its source to its
destination; the same slot carries the ACK/NACK on around the ring back to the source, so every message occupies
every link for one lap and the DATA leg is what differs from link to link.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from tessera.os.chip import DOWN_TAG, Chip, Incoming

#: The message counters are 16 bits wide and wrap (docs/protocol.md, STATUS).
COUNTER_MODULUS = 1 << 16
SAMPLE_INTERVAL_S = 0.1
FIT_ROUNDS = 60
HOST = "host"
IO = "io"


@dataclass(frozen=True)
class HostMessage:
    """A message to or from the host: `source`/`dest` are tile numbers or HOST."""

    time: float  # seconds since the trace began
    source: int | str
    dest: int | str
    tag: int
    words: tuple[int, ...]


@dataclass
class Trace:
    """One recorded window. `samples[k]` = (time, [(messages in, messages out, chip cycle) per tile])."""

    target: str
    tiles: int
    services: dict[int, str]  # tile -> service name ("-" when no image names it)
    permissions: dict[int, int]  # tile -> send permission bits (bit t: tile t, bit tiles: host, tiles+1: I/O)
    io_node: bool
    samples: list[tuple[float, list[tuple[int, int, int]]]] = field(default_factory=list)
    messages: list[HostMessage] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.samples[-1][0] - self.samples[0][0] if self.samples else 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Trace:
        trace = cls(str(data["target"]), int(data["tiles"]), {int(k): str(v) for k, v in data["services"].items()},
                    {int(k): int(v) for k, v in data["permissions"].items()}, bool(data["io_node"]))
        trace.samples = [(float(t), [(int(a), int(b), int(c)) for a, b, c in counts]) for t, counts in data["samples"]]
        trace.messages = [HostMessage(float(m["time"]), _node(m["source"]), _node(m["dest"]), int(m["tag"]),
                                      tuple(int(w) for w in m["words"])) for m in data["messages"]]
        return trace

    def label(self, node: int | str) -> str:
        if node == HOST:
            return HOST
        if node == IO:
            return "I/O"
        name = self.services.get(int(node), "-")
        return f"{node} {name}" if name != "-" else f"tile {node}"


def _node(value: object) -> int | str:
    return value if value in (HOST, IO) else int(value)  # type: ignore[arg-type]


class TraceRecorder:
    """Builds a Trace: `sample()` reads every tile's counters, `observe`/`sent` note host traffic. A chip without
    message counters is refused (TesseraError): its STATUS words 5/6 read 0, which would look like no traffic."""

    def __init__(self, chip: Chip, services: dict[int, str], permissions: dict[int, int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        from tessera.os.errors import TesseraError
        from tessera.os.protocol import Feature

        if not chip.info.features & Feature.MESSAGE_COUNTERS:
            raise TesseraError(f"{chip.link.target}: the chip has no message counters (IDENTIFY features lack "
                               "MESSAGE_COUNTERS; built with counters=False): nothing to trace")
        self.chip = chip
        self.clock = clock
        self.trace = Trace(chip.link.target, chip.info.tile_count, services, permissions,
                           bool(chip.info.features & Feature.IO_NODE))
        self._t0 = clock()

    def sample(self) -> None:
        counts = []
        for tile in range(self.trace.tiles):
            status = self.chip.status(tile)
            counts.append((status.messages_in, status.messages_out, status.cycle))
        self.trace.samples.append((self.clock() - self._t0, counts))

    def observe(self, message: Incoming) -> None:
        self.trace.messages.append(HostMessage(self.clock() - self._t0, message.source, HOST, message.tag,
                                               message.words))

    def sent(self, tile: int, tag: int, words: Sequence[int]) -> None:
        self.trace.messages.append(HostMessage(self.clock() - self._t0, HOST, tile, tag, tuple(words)))


# -- analysis ----------------------------------------------------------------------------------------------------


def counter_delta(before: int, after: int, cycles: int) -> int:
    """Messages counted between two readings `cycles` chip cycles apart. A reading below the previous one is a wrap
    of the 16-bit counter, unless that many messages could not have passed in the time: a node takes or sends at
    most one message per slot (SLOT_FLITS cycles) — then a RESET (a restart) set the counter to 0 in between and
    `after` is what was counted since."""
    from tessera.hw.noc_layouts import SLOT_FLITS  # here: the layouts pull in Amaranth, `tessera --help` need not

    if after >= before:
        return after - before
    wrapped = after + COUNTER_MODULUS - before
    return wrapped if wrapped <= cycles // SLOT_FLITS else after


def tile_counts(trace: Trace, first: int = 0, last: int | None = None) -> list[tuple[int, int]]:
    """(received, sent) per tile between samples `first` and `last` (default: the whole window)."""
    samples = trace.samples[first:(last if last is not None else len(trace.samples) - 1) + 1]
    totals = [[0, 0] for _ in range(trace.tiles)]
    for (_, before), (_, after) in zip(samples, samples[1:]):
        for tile in range(trace.tiles):
            cycles = after[tile][2] - before[tile][2]
            for index in (0, 1):
                totals[tile][index] += counter_delta(before[tile][index], after[tile][index], cycles)
    return [(received, sent) for received, sent in totals]


Pairs = dict[tuple[int | str, int | str], float]


def estimate_pairs(trace: Trace, first: int = 0, last: int | None = None) -> Pairs:
    """Messages per (source, destination) in the window: host traffic as observed, tile-to-tile traffic
    estimated (module docstring)."""
    start = trace.samples[first][0]
    end = trace.samples[last if last is not None else -1][0]
    pairs: Pairs = {}
    to_host_counted = [0] * trace.tiles  # messages to the host that the tile's own send counter counted
    from_host = [0] * trace.tiles
    for message in trace.messages:
        if last is not None and not start <= message.time < end:  # per interval; the whole window takes all
            continue
        key = (message.source, message.dest)
        pairs[key] = pairs.get(key, 0) + 1
        if message.dest == HOST and isinstance(message.source, int) and message.tag != DOWN_TAG:
            to_host_counted[message.source] += 1
        elif message.source == HOST and isinstance(message.dest, int):
            from_host[message.dest] += 1
    counts = tile_counts(trace, first, last)
    sends = [max(0, counts[t][1] - to_host_counted[t]) for t in range(trace.tiles)]
    receives = [max(0, counts[t][0] - from_host[t]) for t in range(trace.tiles)]
    destinations: list[int | str] = list(range(trace.tiles)) + ([IO] if trace.io_node else [])
    allowed = {(s, d): 1.0 for s in range(trace.tiles) for d in destinations
               if trace.permissions.get(s, (1 << trace.tiles) - 1) >> _bit(trace, d) & 1}
    for _ in range(FIT_ROUNDS):
        _scale(allowed, 0, {s: float(sends[s]) for s in range(trace.tiles)})
        _scale(allowed, 1, {d: float(receives[d]) for d in range(trace.tiles)})
    _scale(allowed, 0, {s: float(sends[s]) for s in range(trace.tiles)})  # the send counters hold exactly
    for key, value in allowed.items():
        if value > 0:
            pairs[key] = pairs.get(key, 0) + value
    return pairs


def _bit(trace: Trace, node: int | str) -> int:
    return trace.tiles + 1 if node == IO else int(node)


def _scale(matrix: dict[tuple[int | str, int | str], float], axis: int, targets: dict[int, float]) -> None:
    totals: dict[int | str, float] = {}
    for key, value in matrix.items():
        totals[key[axis]] = totals.get(key[axis], 0.0) + value
    for key in matrix:
        if key[axis] in targets:
            total = totals[key[axis]]
            matrix[key] = matrix[key] * targets[key[axis]] / total if total > 0 else 0.0


def ring_stops(trace: Trace) -> list[int | str]:
    """The ring's stops in order: tiles, the I/O node if any, the host."""
    return list(range(trace.tiles)) + ([IO] if trace.io_node else []) + [HOST]


def link_loads(trace: Trace, pairs: Pairs) -> list[float]:
    """DATA slots that crossed each ring link; link i runs from stop i to stop i + 1 (the last back to stop 0)."""
    stops = ring_stops(trace)
    position = {stop: index for index, stop in enumerate(stops)}
    loads = [0.0] * len(stops)
    for (source, dest), count in pairs.items():
        begin, end = position[source], position[dest]
        hops = (end - begin) % len(stops) or len(stops)  # a message to itself goes once around
        for hop in range(hops):
            loads[(begin + hop) % len(stops)] += count
    return loads


def record(chip: Chip, seconds: float, services: dict[int, str], permissions: dict[int, int],
           interval: float = SAMPLE_INTERVAL_S) -> Trace:
    """Record `seconds` of traffic with this host holding the link itself (no `tessera run` session)."""
    recorder = TraceRecorder(chip, services, permissions)
    recorder.sample()
    end = recorder.clock() + seconds
    next_sample = recorder.clock() + interval
    while (now := recorder.clock()) < end:
        for message in chip.poll(max(0.0, min(next_sample, end) - now)):
            recorder.observe(message)
        if recorder.clock() >= next_sample:
            recorder.sample()
            next_sample += interval
    recorder.sample()
    return recorder.trace
