"""`tessera top` and `tessera trace` on the fake chip: frames and rates; the derived traffic matrix and link loads
on a known pattern; the SVG's and the PNG's content (link loads, counts, colours), through a session and over
the link."""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from tessera.os.chip import Chip
from tessera.os.cli import main
from tessera.os.image import read_image
from tessera.os.runner import Runner
from tessera.os.trace import HOST, HostMessage, Trace, counter_delta, estimate_pairs, link_loads, tile_counts
from tessera.os.trace_draw import BOX_H, BOX_W, GAP, MARGIN, RING_Y

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake
import host_os_reload_system as system


TARGET = "tcp:127.0.0.1:9"  # never opened: the session answers for it


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The reload system streaming far longer than any test window, served by a session."""
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    path = system.write(tmp_path, version=1, count=1_000_000, period=300)
    runner = Runner(Chip(fake.FakeChipLink(fake.FakeChip()).open(), reply_timeout=0.2), read_image(path),
                    image_path=path, out=io.StringIO(), progress=io.StringIO())
    runner.boot()
    with fake.serving(runner, TARGET):
        yield runner, path


def test_top_prints_frames_with_rates(session, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", "--iterations", "3", "--interval", "0.3", "--target", TARGET]) == 0
    frames = capsys.readouterr().out.split("\n\n")
    assert len(frames) == 3
    for number, text in enumerate(frames):
        lines = text.strip("\n").splitlines()
        assert lines[0].startswith(f"tessera top  {TARGET}  ") and lines[0].endswith("every 0.3 s")
        assert lines[1].split()[-2:] == ["in/s", "out/s"]
        rows = {line.split()[1]: line.split() for line in lines[2:]}
        assert set(rows) == {"streamer", "sink", "beat", "tally"}
        if number == 0:
            assert rows["streamer"][-2:] == ["-", "-"]
        else:  # the streamer sends and the sink receives all the time
            assert float(rows["streamer"][-1]) > 0 and float(rows["sink"][-2]) > 0
            assert float(rows["sink"][-1]) == 0


def test_top_refuses_bad_options(session, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["top", "--iterations", "0", "--target", TARGET]) == 1
    assert capsys.readouterr().err == "tessera: error: --interval must be positive and --iterations at least 1\n"


def synthetic(counts: list[list[tuple[int, int]]], messages: list[HostMessage] = ()) -> Trace:
    """Three tiles: 0 may send to 1 and 2, 1 to 2, 2 to nobody; every tile may send to the host."""
    trace = Trace("test", 3, {0: "a", 1: "b", 2: "c"}, {0: 0b1110, 1: 0b1100, 2: 0b1000}, False)
    trace.samples = [(0.5 * index, [(received, sent, 1000 * index) for received, sent in sample])
                     for index, sample in enumerate(counts)]
    trace.messages = list(messages)
    return trace


def test_pairs_and_link_loads_follow_the_counters_and_the_ring() -> None:
    # tile 1 sent 11 (one a log to the host), tile 0 sent 30; tile 1 received 10, tile 2 received 30; tile 0's
    # counters wrapped in the window
    trace = synthetic([[(0, 65530), (0, 0), (0, 0)], [(0, 65535), (5, 5), (12, 0)], [(0, 24), (10, 11), (30, 0)]],
                      [HostMessage(0.7, 1, HOST, 0xFFFF, (7,))])
    assert tile_counts(trace) == [(0, 30), (10, 11), (30, 0)]
    pairs = estimate_pairs(trace)
    assert {key: round(value, 6) for key, value in pairs.items()} == {(0, 1): 10, (0, 2): 20, (1, 2): 10,
                                                                       (1, HOST): 1}
    # links: 0->1, 1->2, 2->host, host->0 (DATA legs)
    assert [round(load, 6) for load in link_loads(trace, pairs)] == [30, 31, 1, 0]


def test_a_counter_below_its_last_reading_wrapped_or_restarted() -> None:
    assert counter_delta(65530, 4, 1000) == 10  # a wrap: 10 messages fit in 1000 cycles
    assert counter_delta(500, 7, 1000) == 7  # 65043 messages cannot: the tile was restarted (RESET) meanwhile
    assert counter_delta(3, 9, 10) == 6


def _svg_facts(path: Path) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], int], list[dict[str, str]]]:
    root = ET.parse(path).getroot()
    elements = list(root.iter())
    stops = {e.get("data-stop"): e.attrib for e in elements if e.get("class") == "stop"}
    links = {(e.get("data-from"), e.get("data-to")): int(e.get("data-load")) for e in elements
             if e.get("class") == "link"}
    arrows = [e.attrib for e in elements if e.get("class") in ("message", "derived")]
    return stops, links, arrows


def test_trace_svg_through_the_session(session, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "trace.svg"
    assert main(["trace", "--seconds", "1.5", "-o", str(output), "--target", TARGET]) == 0
    summary = capsys.readouterr().out
    stops, links, arrows = _svg_facts(output)
    assert set(stops) == {"0 streamer", "1 sink", "2 beat", "3 tally", "host"}
    sent = {name: int(stops[name]["data-out"]) for name in stops if name != "host"}
    received = {name: int(stops[name]["data-in"]) for name in stops if name != "host"}
    assert sent["0 streamer"] > 20 and sent["2 beat"] > 2 and sent["1 sink"] == sent["3 tally"] == 0
    assert abs(received["1 sink"] - sent["0 streamer"]) <= 5  # at most a mailbox (4) + one in flight apart
    # no host traffic in this window: each pair's messages load only the links between them
    assert links == {("0 streamer", "1 sink"): sent["0 streamer"], ("1 sink", "2 beat"): 0,
                     ("2 beat", "3 tally"): sent["2 beat"], ("3 tally", "host"): 0, ("host", "0 streamer"): 0}
    derived = [a for a in arrows if a["class"] == "derived"]
    assert {(a["data-from"], a["data-to"]) for a in derived} == {("0 streamer", "1 sink"), ("2 beat", "3 tally")}
    assert sum(int(a["data-count"]) for a in derived if a["data-from"] == "0 streamer") == pytest.approx(
        sent["0 streamer"], abs=len(derived))  # per-interval counts, each rounded
    assert summary.startswith(f"{output}: ") and f"busiest link 0 streamer -> 1 sink: {sent['0 streamer']}" in summary


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind, body = data[position + 4:position + 8], data[position + 8:position + 8 + length]
        chunks[kind] = body
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 3 * width + 1
    assert len(raw) == stride * height and all(raw[row * stride] == 0 for row in range(height))
    return width, height, b"".join(raw[row * stride + 1:(row + 1) * stride] for row in range(height))


def test_trace_png_over_the_link_without_a_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    path = system.write(tmp_path, version=1, count=1_000_000, period=300)
    chip = fake.FakeChip()
    Runner(Chip(fake.FakeChipLink(chip).open()), read_image(path), out=io.StringIO(), progress=io.StringIO()).boot()
    board = fake.FakeBoardServer(chip)
    try:
        output = tmp_path / "trace.png"
        assert main(["trace", "--seconds", "1", "-o", str(output), "--target", board.target,
                     "--image", str(path)]) == 0
        assert "busiest link 0 streamer -> 1 sink" in capsys.readouterr().out
        assert main(["top", "--iterations", "1", "--target", board.target, "--image", str(path)]) == 0
        frame = capsys.readouterr().out.splitlines()
        assert frame[0].startswith(f"tessera top  {board.target}") and frame[2].split()[:2] == ["0", "streamer"]
        assert frame[2].split()[2] in ("running", "sleeping") and frame[2].split()[-2:] == ["-", "-"]
    finally:
        board.close()
    width, height, pixels = _png_pixels(output.read_bytes())

    def pixel(x: int, y: int) -> tuple[int, ...]:
        return tuple(pixels[3 * (y * width + x):3 * (y * width + x) + 3])

    band_y = round(RING_Y + BOX_H / 2) + 4  # inside a link's band, below its line
    busiest = pixel(MARGIN + BOX_W + GAP // 2, band_y)  # streamer -> sink
    idle = pixel(MARGIN + 2 * BOX_W + GAP + GAP // 2, band_y)  # sink -> beat
    assert busiest == (200, 30, 30) and idle == (255, 255, 255)
    assert main(["trace", "-o", str(tmp_path / "trace.pdf"), "--target", board.target]) == 1
    assert capsys.readouterr().err.endswith("the drawing is written as SVG or PNG: name it .svg or .png\n")
