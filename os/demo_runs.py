"""The host side of the six demos in `os/demos/`: each function builds its image, boots it on `chip`, drives it,
prints what happens through `say` and returns its results (tests/test_demos.py checks them).

Runner event lines (start, DOWN, restart, snapshot saved/restored) go to `events`; the crash demo also echoes
the supervision events through `say`, because they are what it shows.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tessera.os.chip import Chip
from tessera.os.demo_host import DemoError, DemoSystem, build_demo, is_output, png_bytes, signed

Say = Callable[[str], None]

# ---------------------------------------------------------------------------------------------------------------
# 1. ping-pong


@dataclass(frozen=True)
class PingPongResult:
    rounds: int
    counter: int
    total_cycles: int
    fastest: int
    slowest: int


def run_pingpong(chip: Chip, folder: Path, say: Say, *, rounds: int = 50) -> PingPongResult:
    system = DemoSystem(chip, build_demo("pingpong", folder, chip.info), events=io.StringIO())
    try:
        counter, total, fastest, slowest = (signed(w) for w in system.call("ping", [rounds]))
    finally:
        system.close()
    result = PingPongResult(rounds, counter, total, fastest, slowest)
    say(f"ping (tile {system.tile('ping')}) and pong (tile {system.tile('pong')}) bounced a counter {rounds} times: "
        f"it reached {counter}")
    say(f"round trip ping -> pong -> ping measured with now(): fastest {fastest} cycles, slowest {slowest}; "
        f"{total} cycles for all {rounds} rounds ({total / rounds:.0f} per round with ping's loop)")
    return result


# ---------------------------------------------------------------------------------------------------------------
# 2. pipeline

PIPELINE_TEXT = """\
Tessera is a many-tile processor for small FPGAs. Each tile is a small RISC-V core with its own memory and a
hardware mailbox, and the tiles talk by messages on a ring. A service is a small Python class; the compiler
turns it into code for one tile, and the host loads the services, starts them under a supervisor and restarts a
service when its tile faults. The host talks to the chip over a serial link, the same link on the board and on
the virtual board. Messages between two services keep their order; a message to a full mailbox waits on the
ring until the mailbox has room. The tiles share nothing but the ring, so a fault in one tile stops that tile
and no other: the supervisor hears of it as a message, and the other services keep running.
"""
TEXT, END, RESULT = 1, 2, 3
START_HASH = 5381


def words_of(text: str) -> list[str]:
    """The words `split` sees: runs of ASCII letters, folded to lower case."""
    return [word.lower() for word in re.findall(r"[A-Za-z]+", text)]


def word_hash(word: str) -> int:
    """split.py's hash (djb2 with xor) as an unsigned 32-bit word, never 0."""
    value = START_HASH
    for byte in word.encode():
        value = (((value << 5) + value) ^ byte) & 0xFFFF_FFFF
    return value or 1


def text_messages(text: str) -> list[list[int]]:
    """The text as messages of up to 4 little-endian words; zero bytes only pad the end."""
    data = text.encode()
    data += bytes(-len(data) % 4)
    words = [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]
    return [words[i:i + 4] for i in range(0, len(words), 4)]


@dataclass(frozen=True)
class PipelineResult:
    top: list[tuple[str, int]]
    words: int
    distinct: int


def run_pipeline(chip: Chip, folder: Path, say: Say, *, text: str = PIPELINE_TEXT) -> PipelineResult:
    names: dict[int, str] = {}
    for word in words_of(text):
        if names.setdefault(word_hash(word), word) != word:
            raise DemoError(f"the words {word!r} and {names[word_hash(word)]!r} have the same hash: change the text")
    system = DemoSystem(chip, build_demo("pipeline", folder, chip.info), events=io.StringIO())
    try:
        messages = text_messages(text)
        for words in messages:
            system.send("split", words, TEXT)
        system.send("split", [0], END)
        top: list[tuple[str, int]] = []
        while True:
            message = system.wait(system.output_from("topk"), "top-k result")
            if message.tag == END:
                break
            top.append((names.get(message.words[0], f"#{message.words[0]:08x}"), message.words[1]))
    finally:
        system.close()
    result = PipelineResult(top, message.words[0], message.words[1])
    tiles = ", ".join(f"{name} on tile {system.tile(name)}" for name in ("split", "count", "topk"))
    say(f"streamed {len(text.encode())} bytes of text in {len(messages)} messages through {tiles}")
    say(f"{result.words} words, {result.distinct} different; the {len(top)} most frequent: "
        + ", ".join(f"{word} {count}" for word, count in top))
    return result


# ---------------------------------------------------------------------------------------------------------------
# 3. parallel Mandelbrot

JOB, DONE, ROW_BASE = 0x8000, 0x8001, 0x100
ONE = 1 << 16
SHADES = " .:-=+*#%@"
PNG_SCALE = 10


def mandelbrot_reference(width: int, height: int, limit: int) -> list[list[int]]:
    """The escape counts the workers compute, computed in CPython (same 16.16 fixed point)."""

    def mul(a: int, b: int) -> int:
        return (a >> 8) * (b >> 8)

    def escape(cr: int, ci: int) -> int:
        zr = zi = 0
        for n in range(limit):
            zr2, zi2 = mul(zr, zr), mul(zi, zi)
            if zr2 + zi2 > 4 * ONE:
                return n
            zr, zi = zr2 - zi2 + cr, 2 * mul(zr, zi) + ci
        return limit

    step_r, step_i = 3 * ONE // width, 2 * ONE // height
    return [[escape(column * step_r - 2 * ONE, row * step_i - ONE) for column in range(width)]
            for row in range(height)]


def unpack_row(words: Sequence[int], width: int) -> list[int]:
    return [words[column >> 3] >> (4 * (column & 7)) & 0xF for column in range(width)]


@dataclass(frozen=True)
class MandelbrotResult:
    counts: list[list[int]]
    cycles_one: int
    cycles_all: int
    workers: int
    png: Path

    @property
    def speedup(self) -> float:
        return self.cycles_one / self.cycles_all


def _picture(system: DemoSystem, workers: int, width: int, height: int, limit: int) -> tuple[list[list[int]], int]:
    system.send("collector", [workers, width, height, limit], JOB)
    rows: dict[int, list[int]] = {}
    while True:
        message = system.wait(system.output_from("collector"), "Mandelbrot rows")
        if message.tag == DONE:
            break
        rows[message.tag - ROW_BASE] = unpack_row(message.words, width)
    if sorted(rows) != list(range(height)):
        raise DemoError(f"the collector sent rows {sorted(rows)}, expected 0..{height - 1}")
    return [rows[row] for row in range(height)], message.words[0]


def run_mandelbrot(chip: Chip, folder: Path, say: Say, *, width: int = 24, height: int = 16, limit: int = 12,
                   workers: int = 7) -> MandelbrotResult:
    """`workers` at most: as many as the image built for the chip has (build_demo leaves out those that do not fit)."""
    system = DemoSystem(chip, build_demo("mandelbrot", folder, chip.info), events=io.StringIO())
    workers = min(workers, len(system.runner.services) - 1)  # every service but the collector
    try:
        single, cycles_one = _picture(system, 1, width, height, limit)
        counts, cycles_all = _picture(system, workers, width, height, limit)
    finally:
        system.close()
    if single != counts:
        raise DemoError("the pictures computed on one tile and on all workers differ")
    png = folder / "mandelbrot.png"
    png.write_bytes(png_bytes([[255 - 255 * count // limit for count in row for _ in range(PNG_SCALE)]
                               for row in counts for _ in range(PNG_SCALE)]))
    for row in counts:
        say("  " + "".join(SHADES[count * (len(SHADES) - 1) // limit] for count in row))
    matches = counts == mandelbrot_reference(width, height, limit)
    result = MandelbrotResult(counts, cycles_one, cycles_all, workers, png)
    say(f"{width}x{height} pixels, at most {limit} iterations: {cycles_one} cycles on 1 tile, {cycles_all} cycles on "
        f"{workers} tiles: speed-up {result.speedup:.2f}x")
    say(f"same picture as CPython computes: {'yes' if matches else 'NO'}; wrote {png} "
        f"({width * PNG_SCALE}x{height * PNG_SCALE})")
    if not matches:
        raise DemoError("the chip's picture differs from the CPython reference")
    return result


# ---------------------------------------------------------------------------------------------------------------
# 4. crash and recover

START, STOP, READ = 1, 2, 2
#: Jobs for `fragile`: 0 makes it divide by zero.
CRASH_JOBS = (50, 0, 8, 0, 4000)


@dataclass(frozen=True)
class CrashResult:
    answers: list[tuple[int, int] | None]  # fragile's reply per job, None where it crashed
    restarts: int
    pacer_sent: int
    steady: tuple[int, int, int]  # received, last number, numbers missing or out of order
    steady_across_restarts: list[tuple[int, int]]  # numbers steady had at a DOWN and at fragile's next answer
    events: list[str]


def run_crash(chip: Chip, folder: Path, say: Say, *, jobs: Sequence[int] = CRASH_JOBS,
              gap: int = 1000) -> CrashResult:
    events = _EventEcho(say)
    system = DemoSystem(chip, build_demo("crash", folder, chip.info), events=events)
    fragile_tile, steady_tile = system.tile("fragile"), system.tile("steady")
    across: list[tuple[int, int]] = []  # numbers steady had received at a DOWN and at fragile's next answer
    down_at: int | None = None
    try:
        system.send("pacer", [gap], START)
        say(f"pacer (tile {system.tile('pacer')}) streams numbered messages to steady (tile {steady_tile}); "
            f"jobs go to fragile (tile {fragile_tile})")
        answers: list[tuple[int, int] | None] = []
        for job in jobs:
            restarts = system.runner.services["fragile"].restarts
            system.send("fragile", [job])
            answer = system.wait(lambda m: m.source == fragile_tile and (m.is_down or is_output(m)),
                                 "an answer or a DOWN report from fragile")
            if answer.is_down:
                down_at = steady_received(system)
                system.runner.handle(answer)  # the supervisor restarts fragile
                if system.runner.services["fragile"].restarts <= restarts:
                    raise DemoError("fragile went down and was not restarted")
                answers.append(None)
                say(f"fragile: job {job} crashed it; steady had received {down_at} numbers at the DOWN report")
            else:
                quotient, count = answer.words
                if down_at is not None:
                    across.append((down_at, steady_received(system)))
                    say(f"fragile is back; steady has received {across[-1][1]} numbers by now: it kept running")
                    down_at = None
                answers.append((quotient, count))
                say(f"fragile: 1000000 // {job} = {quotient} (job {count} since it last started)")
        (sent,) = system.call("pacer", [0], STOP)
        steady = system.call("steady", [0], READ)
    finally:
        system.close()
    result = CrashResult(answers, system.runner.services["fragile"].restarts, sent,
                         (steady[0], steady[1], steady[2]), across, events.lines)
    say(f"pacer sent {sent} messages; steady received {steady[0]}, the last numbered {steady[1]}, "
        f"{steady[2]} missing or out of order")
    say("restarts: " + ", ".join(f"{name} {state.restarts}" for name, state in system.runner.services.items()))
    return result


def steady_received(system: DemoSystem) -> int:
    """How many numbers steady has received (its own count: a READ does not disturb the stream)."""
    return system.call("steady", [0], READ)[0]


class _EventEcho(io.StringIO):
    """The runner's event stream: keeps every line, and says the supervision events (DOWN, restarts)."""

    def __init__(self, say: Say) -> None:
        super().__init__()
        self.say = say
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        for line in filter(None, text.splitlines()):
            self.lines.append(line)
            if re.search(r"\b(down|restarted|gave up|SYSTEM STOPPED)\b", line):
                self.say("  event " + line.strip())
        return super().write(text)


# ---------------------------------------------------------------------------------------------------------------
# 5. persistent key-value store

PUT, GET, DELETE, COUNT = 1, 2, 3, 4
KV_WRITES = ((1, 100), (2, 200), (3, 300), (42, -7))
KV_DELETED = 2


@dataclass(frozen=True)
class KvResult:
    after_writes: dict[int, int | None]
    after_restart: dict[int, int | None]
    after_reset: dict[int, int | None]
    events: list[str]


def _read_all(system: DemoSystem, keys: Sequence[int]) -> dict[int, int | None]:
    values: dict[int, int | None] = {}
    for key in keys:
        found, value = system.call("kv", [key], GET)
        values[key] = signed(value) if found else None
    return values


def _show(values: dict[int, int | None]) -> str:
    return ", ".join(f"{key}={'-' if value is None else value}" for key, value in values.items())


def run_kvstore(chip: Chip, folder: Path, say: Say, *, reset: Callable[[], Chip]) -> KvResult:
    """`reset` resets the whole chip and returns a new client for it (tessera.os.demo_host.reset_chip)."""
    image = build_demo("kvstore", folder, chip.info)
    for saved in folder.glob("kvstore.*.state.json"):  # start from an empty store
        saved.unlink()
    events = io.StringIO()
    keys = [key for key, _ in KV_WRITES]
    system = DemoSystem(chip, image, events=events)
    try:
        for key, value in KV_WRITES:
            system.call("kv", [key, value], PUT)
        system.call("kv", [KV_DELETED], DELETE)
        after_writes = _read_all(system, keys)
        say(f"kv (tile {system.tile('kv')}) after {len(KV_WRITES)} PUTs and DELETE {KV_DELETED}: {_show(after_writes)}")
        system.runner.restart_service("kv")
        after_restart = _read_all(system, keys)
        say(f"after `tessera restart kv` (image reloaded, state restored by the host): {_show(after_restart)}")
    finally:
        system.close()
    chip = reset()
    system = DemoSystem(chip, image, events=events)
    try:
        after_reset = _read_all(system, keys)
    finally:
        system.close()
    say(f"after a full chip reset (every tile's memory cleared, image booted again): {_show(after_reset)}")
    lines = events.getvalue().splitlines()
    restored = [re.sub(r"^\s*[0-9.]+ s\s+", "", line) for line in lines if "state restored" in line]
    say(f"host: the state was restored {len(restored)} times ({restored[-1] if restored else 'never'})")
    return KvResult(after_writes, after_restart, after_reset, lines)


# ---------------------------------------------------------------------------------------------------------------
# 6. board I/O

PRESS_BUTTON = 0
STATE = 0x10
#: fsm.py's LED patterns by state: off, LED 0, LED 1, both.
LED_PATTERNS = (0b00, 0b01, 0b10, 0b11)


class BoardPanel(Protocol):
    """The board's button and LEDs as the host reaches them: on the virtual board the host plays the button
    (tessera.sim.board_io); on a real board a person presses it and `leds` returns None (nobody can read them)."""

    def press(self, button: int) -> None: ...

    def leds(self, expected: int) -> int | None:
        """The LEDs once they show `expected` (or what they show when they do not in time)."""


@dataclass(frozen=True)
class BoardIoResult:
    states: list[tuple[int, int, int]]  # fsm's (state, pattern, presses) after each press
    leds: list[int | None]  # what the LEDs showed after each press


def run_boardio(chip: Chip, folder: Path, say: Say, *, panel: BoardPanel, presses: int = 5) -> BoardIoResult:
    system = DemoSystem(chip, build_demo("boardio", folder, chip.info), events=io.StringIO())
    states: list[tuple[int, int, int]] = []
    shown: list[int | None] = []
    try:
        say(f"panel (tile {system.tile('panel')}) subscribed to the button; fsm (tile {system.tile('fsm')}) steps the "
            f"pattern; lamp (tile {system.tile('lamp')}) lights the LEDs")
        for _ in range(presses):
            panel.press(PRESS_BUTTON)
            state, pattern, count = system.wait(system.output_from("fsm", STATE), "fsm's new state").words[:3]
            states.append((state, pattern, count))
            shown.append(panel.leds(pattern))
            leds = "not visible from the host" if shown[-1] is None else f"{shown[-1]:02b}"
            say(f"press {count}: state {state}, pattern {pattern:02b}; LEDs {leds}")
    finally:
        system.close()
    return BoardIoResult(states, shown)
