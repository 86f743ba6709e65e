"""The demos of os/demos/ on the fake chip (golden tile models behind a Link): each gets the answers it must, checked
against values computed here; the tour (1-5) on the virtual board; and demo 6, board I/O, on the virtual board of a
chip with LEDs and a button, the host pressing it."""

from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest

from tessera.os import demo_runs
from tessera.os.chip import Chip
from tessera.os.demo_host import DEMOS_ROOT, DemoError, DemoSystem, ReplyDeadline, build_demo, png_bytes
from tessera.os.image import read_image
from tessera.os.service_build import build_service

import host_os_fakechip as fake




def new_chip(fakes: list | None = None) -> Chip:
    """A client on a fresh fake chip with the demos' parameters (the chip top's defaults)."""
    chip = fake.FakeChip(tiles=8, mem_bytes=4096, mailbox_depth=8)
    if fakes is not None:
        fakes.append(chip)
    return Chip(fake.FakeChipLink(chip).open(), reply_timeout=0.2)


def test_pingpong_counter_and_round_trip(tmp_path: Path) -> None:
    lines: list[str] = []
    result = demo_runs.run_pingpong(new_chip(), tmp_path, lines.append, rounds=12)
    assert result.counter == 24  # pong adds one, ping adds one, per round
    assert 0 < result.fastest <= result.slowest
    assert result.slowest * 12 <= result.total_cycles
    assert "bounced a counter 12 times: it reached 24" in lines[0]


def test_pipeline_top_k_matches_a_counter(tmp_path: Path) -> None:
    text = "the cat saw the dog; THE dog ran. A cat, a dog and the bird: the end\n" * 3 + "zebra " * 2
    result = demo_runs.run_pipeline(new_chip(), tmp_path, lambda _: None, text=text)
    words = demo_runs.words_of(text)
    counts = Counter(words)
    assert (result.words, result.distinct) == (len(words), len(counts))
    assert [count for _, count in result.top] == sorted(counts.values(), reverse=True)[:5]
    assert all(counts[word] == count for word, count in result.top)


def _decode_png(data: bytes) -> list[list[int]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        assert struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        position += 12 + length
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[row * (width + 1):(row + 1) * (width + 1)] for row in range(height)]
    assert all(row[0] == 0 for row in rows)
    return [list(row[1:]) for row in rows]


def test_png_writer_round_trips() -> None:
    pixels = [[0, 128, 255], [7, 8, 9]]
    assert _decode_png(png_bytes(pixels)) == pixels
    with pytest.raises(ValueError):
        png_bytes([[1, 2], [3]])


def test_mandelbrot_png_matches_cpython_and_workers_speed_it_up(tmp_path: Path) -> None:
    width, height, limit = 8, 4, 5
    result = demo_runs.run_mandelbrot(new_chip(), tmp_path, lambda _: None, width=width, height=height,
                                      limit=limit, workers=4)
    reference = demo_runs.mandelbrot_reference(width, height, limit)
    assert result.counts == reference
    assert len({count for row in reference for count in row}) > 2  # a picture, not a flat field
    scale = demo_runs.PNG_SCALE
    expected = [[255 - 255 * count // limit for count in row for _ in range(scale)] for row in reference
                for _ in range(scale)]
    assert _decode_png(result.png.read_bytes()) == expected
    assert result.speedup > 1.5


def test_mandelbrot_runs_with_the_workers_a_smaller_chip_has(tmp_path: Path) -> None:
    """On 4 tiles the demo builds without w4..w7 (workers stay on the tiles they are pinned to) and uses 3."""
    chip = Chip(fake.FakeChipLink(fake.FakeChip(tiles=4, mem_bytes=4096, mailbox_depth=8)).open(), reply_timeout=0.2)
    result = demo_runs.run_mandelbrot(chip, tmp_path, lambda _: None, width=8, height=4, limit=5)
    assert result.workers == 3 and result.counts == demo_runs.mandelbrot_reference(8, 4, 5)
    image = read_image(tmp_path / "mandelbrot.tsi")
    assert sorted((tile.service, tile.tile) for tile in image.tiles) == [
        ("collector", 0), ("w1", 1), ("w2", 2), ("w3", 3)]


def test_tour_skips_what_does_not_fit_a_two_tile_chip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tessera.os import demo

    link = fake.FakeChipLink(fake.FakeChip(tiles=2, mem_bytes=4096, mailbox_depth=8)).open()
    demo.tour(link, tmp_path, ("pingpong", "pipeline", "crash"))
    out = capsys.readouterr().out
    assert out.count("skipped: it needs 3 tiles, the chip has 2") == 2  # pipeline and crash
    assert "it reached 100" in out


def test_kv_snapshot_covers_the_table_where_the_image_records_it() -> None:
    source = (DEMOS_ROOT / "kvstore" / "kv.py").read_text()
    image = build_service(source, "kv.py", mem_bytes=4096)
    (table,) = image.state_fields
    assert (table.name, table.address, table.size) == ("table", image.field_address("table"), 4 * 3 * 8)


def test_crash_loses_nothing_and_matches_a_fault_free_run(tmp_path: Path) -> None:
    fakes: list = []
    lines: list[str] = []
    crashed = demo_runs.run_crash(new_chip(fakes), tmp_path / "crash", lines.append, jobs=(50, 0, 8, 0, 4000),
                                  gap=300)
    clean = demo_runs.run_crash(new_chip(), tmp_path / "clean", lambda _: None, jobs=(50, 8, 4000), gap=300)
    assert crashed.restarts == 2 and clean.restarts == 0
    assert crashed.answers[1] is None and crashed.answers[3] is None
    assert [answer[0] for answer in crashed.answers if answer] == [answer[0] for answer in clean.answers]
    assert [answer[0] for answer in clean.answers] == [1_000_000 // 50, 1_000_000 // 8, 1_000_000 // 4000]
    for run in (crashed, clean):  # every numbered message arrived, in order, whatever happened to fragile
        assert run.steady == (run.pacer_sent, run.pacer_sent, 0)
    assert all(after > before for before, after in crashed.steady_across_restarts)  # steady kept running
    assert sum("down: tile" in line for line in crashed.events) == 2
    assert sum("restarted: tile" in line for line in crashed.events) == 2
    assert sum(line.startswith("  event") for line in lines) == 4
    # between boot (three RUNs) and shutdown (three HALTs) the host commanded fragile's tile only
    log = fakes[0].control_log
    third_run = [index for index, (op, _) in enumerate(log) if op == "run"][2]
    fragile = next(int(line.split("tile ")[1].split()[0]) for line in crashed.events if "down:" in line)
    assert {tile for _, tile in log[third_run + 1:-3]} == {fragile}
    assert [op for op, _ in log[-3:]] == ["halt"] * 3


def test_kvstore_survives_restart_and_chip_reset(tmp_path: Path) -> None:
    fakes: list = []
    lines: list[str] = []
    result = demo_runs.run_kvstore(new_chip(fakes), tmp_path, lines.append, reset=lambda: new_chip(fakes))
    expected = {key: None if key == demo_runs.KV_DELETED else value for key, value in demo_runs.KV_WRITES}
    assert result.after_writes == result.after_restart == result.after_reset == expected
    assert len(fakes) == 2  # the reset made a new chip: its memory never held the store
    assert sum("state restored (24 words)" in line for line in result.events) == 2
    assert (tmp_path / "kvstore.kv.state.json").exists()


@pytest.mark.slow
def test_tour_on_the_virtual_board(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo`: the whole tour on the real chip top under Verilator, exit status 0."""
    from tessera.os import demo

    assert demo.main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "it reached 100" in out  # ping-pong: 50 rounds
    assert "same picture as CPython computes: yes" in out
    assert "0 missing or out of order" in out and "down: tile" in out and "restarted: tile" in out
    assert out.count("1=100, 2=-, 3=300, 42=-7") == 3
    assert (tmp_path / "mandelbrot.png").read_bytes().startswith(b"\x89PNG")


def test_tour_board_option_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo BOARD=...`: a board's chip is simulated, so --board needs a sim target, and names a known board."""
    from tessera.os import demo

    with pytest.raises(SystemExit) as exited:
        demo.main(["--board", "icebreaker", "--target", "serial:/dev/ttyUSB1", "--out", str(tmp_path)])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "--board simulates a board's chip: it needs a sim target, not 'serial:/dev/ttyUSB1'" in error
    assert demo.main(["--board", "icebreakr", "--out", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "board 'icebreakr': expected one of hx8k, icebreaker, icestick, upduino" in error
    assert error.startswith("demo: error: ") and error.count("\n") == 1


@pytest.mark.slow
def test_boardio_on_the_virtual_board_with_the_host_playing_the_button(tmp_path: Path) -> None:
    """Demo 6 on the chip top with the iCEBreaker's LEDs and button: each press the host plays reaches `panel`
    through the I/O node, steps `fsm`, and `lamp` lights the pattern on the LEDs."""
    from tessera.os.link import open_link
    from tessera.sim import board_io

    lines: list[str] = []
    with open_link("sim", chip=board_io.io_chip()) as link:
        panel = board_io.VirtualPanel(link.endpoints)
        assert board_io.io_state(link.endpoints).leds == 0
        result = demo_runs.run_boardio(Chip(link), tmp_path, lines.append, panel=panel, presses=5)
    patterns = [demo_runs.LED_PATTERNS[step % 4] for step in range(1, 6)]
    assert result.states == [(step % 4, pattern, step) for step, pattern in zip(range(1, 6), patterns)]
    assert result.leds == patterns
    assert "press 4: state 0, pattern 00; LEDs 00" in lines


class _Clocks:
    """A wall clock and a chip cycle counter that the test moves by hand; counts the counter's reads."""

    def __init__(self) -> None:
        self.now = 0.0
        self.cycle = 5_000
        self.reads = 0

    def cycles(self) -> int:
        self.reads += 1
        return self.cycle

    def run(self, seconds: float, chip_hz: float) -> None:
        self.now += seconds
        self.cycle += round(seconds * chip_hz)


def _deadline(clocks: _Clocks) -> ReplyDeadline:
    return ReplyDeadline(clocks.cycles, 1_000_000, wall_s=10.0, chip_s=2.0, longest_s=100.0, clock=lambda: clocks.now)


def _overdue_after(clocks: _Clocks, deadline: ReplyDeadline, chip_hz: float, step: float = 0.25) -> float:
    """The wall-clock time at which `deadline` first says overdue while the chip runs at `chip_hz`."""
    while not deadline.overdue():
        clocks.run(step, chip_hz)
        assert clocks.now < 1000, "never overdue"
    return clocks.now


def test_reply_deadline_on_hardware_is_the_wall_clock_limit() -> None:
    clocks = _Clocks()
    deadline = _deadline(clocks)
    assert _overdue_after(clocks, deadline, 1_000_000) == 10.0
    assert deadline.describe() == "10 s (the chip ran 10 s of its own time)"


def test_reply_deadline_gives_a_slow_chip_its_own_time() -> None:
    clocks = _Clocks()
    deadline = _deadline(clocks)  # the chip at 1/20 of its clock: its 2 s take 40 s
    assert _overdue_after(clocks, deadline, 50_000) == 40.0
    assert "the chip ran 2 s of its own time" in deadline.describe()
    # read at the start, then once a second from the wall-clock limit on: 10, 11, ..., 40
    assert clocks.reads == 1 + 31


def test_reply_deadline_stops_waiting_for_a_chip_that_does_not_run() -> None:
    clocks = _Clocks()
    deadline = _deadline(clocks)
    assert _overdue_after(clocks, deadline, 0) == 100.0
    assert deadline.describe() == "100 s (the chip ran 0 s of its own time)"


def test_a_demo_wait_that_outlasts_its_limits_names_them(tmp_path: Path) -> None:
    fakes: list = []
    chip = new_chip(fakes)
    system = DemoSystem(chip, build_demo("pingpong", tmp_path), events=io.StringIO())
    chip_seconds = 0.002  # 24_000 cycles of the fake chip's 12 MHz clock
    started = fakes[0].noc.cycle
    system.deadline = lambda timeout: ReplyDeadline(lambda: chip.status(0).cycle, chip.info.clock_hz,
                                                    wall_s=0.1, chip_s=chip_seconds)
    expected = r"no answer nobody sends within \d+ s \(the chip ran 0\.00[2-9]\d* s of its own time\)"
    with pytest.raises(DemoError, match=expected):
        system.wait(lambda message: False, "answer nobody sends")
    assert fakes[0].noc.cycle - started >= chip_seconds * chip.info.clock_hz
    system.close()
