"""The virtual board (tessera.sim.virtual_board + sim/vboard_main.cpp) on the stand-in chip top.

One Verilator build of the stand-in is shared by all tests of this module (and with tests/test_link.py through
the build cache). Replies are checked against the stand-in's reference model.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from tessera.os.build import build_image
from tessera.os.chip import Chip
from tessera.os.demo_host import DEMOS_ROOT, DemoSystem
from tessera.os.image import write_image
from tessera.os.link import LinkClosedError, SerialLink, SimLink, TcpLink
from tessera.os.manifest import parse_manifest
from tessera.sim import virtual_board
from tessera.sim.virtual_board import BoardBuild, BoardError, ChipSpec, VirtualBoard

STANDIN_PATH = Path(__file__).with_name("vboard_standin.py")
STANDIN = ChipSpec(f"{STANDIN_PATH}:StandinChip")
StandinModel = STANDIN.load_module().StandinModel
QUERY = STANDIN.load_module().QUERY


@pytest.fixture(scope="module")
def build() -> BoardBuild:
    return virtual_board.build_board(STANDIN)


@pytest.fixture(scope="module")
def icarus_build() -> BoardBuild:
    return virtual_board.build_board(STANDIN, simulator="icarus")


@pytest.fixture
def board(build: BoardBuild) -> Iterator[VirtualBoard]:
    with VirtualBoard.start(build) as running:
        yield running


def exchange(link: TcpLink | SerialLink | SimLink, data: bytes, timeout: float = 10.0) -> bytes:
    link.write(data)
    return link.read_exact(len(data), timeout)


def fst_time_range(path: Path) -> tuple[int, int]:
    """First and last dump time from an FST file's header block (block type 0, then length, start, end)."""
    block_type, _length, start, end = struct.unpack(">BQQQ", path.read_bytes()[:25])
    assert block_type == 0, f"{path} does not start with an FST header block"
    return start, end


def test_second_build_reuses_the_first_without_recompiling(build: BoardBuild) -> None:
    binary_mtime = build.executable.stat().st_mtime_ns
    again = virtual_board.build_board(STANDIN)
    assert again.build_dir == build.build_dir
    assert not again.rebuilt
    assert again.seconds < 5.0
    assert build.executable.stat().st_mtime_ns == binary_mtime


def test_other_parameters_make_another_build(build: BoardBuild) -> None:
    assert virtual_board.design_key(ChipSpec(STANDIN.factory, {"fifo_depth": 4}), "verilator") != build.key


def test_another_design_links_the_cached_runtime_objects(build: BoardBuild) -> None:
    other = virtual_board.build_board(ChipSpec(STANDIN.factory, {"fifo_depth": 4}))
    assert other.build_dir != build.build_dir
    log = (other.build_dir / "build.log").read_text()
    assert "include/verilated.cpp" not in log  # not compiled again ...
    assert f"{virtual_board.BUILD_ROOT / 'runtime'}/" in log and "/verilated.o" in log  # ... but linked
    board = VirtualBoard.start(other, pty=False, max_cycles=1000)
    assert board.wait(timeout=10)["cycles"] == 1000


def test_tcp_bytes_reach_the_chip_and_replies_come_back(board: VirtualBoard) -> None:
    rng = random.Random(7)
    model = StandinModel()
    with TcpLink(board.endpoints.host, board.endpoints.port) as link:
        assert exchange(link, b"\x05\x06\x00\xff\x00") == model.reply(b"\x05\x06\x00\xff\x00") == b"\x06\x07\x02\x00\x04"
        # Far more than the stand-in's FIFO holds, sent before anything is read: back-pressure must lose nothing.
        data = bytes(range(256)) + rng.randbytes(20000)
        assert exchange(link, data) == model.reply(data)
    stats = board.stats()
    assert stats["rx_bytes"] == stats["tx_bytes"] == 5 + len(data)
    assert stats["cycles"] > len(data)


def test_pty_works_like_a_serial_port(board: VirtualBoard) -> None:
    assert board.endpoints.pty is not None and os.path.exists(board.endpoints.pty)
    model = StandinModel()
    with serial.Serial(board.endpoints.pty, 115200, timeout=5) as port:
        port.write(b"\x10\x00")
        assert port.read(2) == model.reply(b"\x10\x00")
    with SerialLink(board.endpoints.pty) as link:
        data = random.Random(3).randbytes(3000)
        assert exchange(link, data) == model.reply(data)


def test_second_tcp_client_is_refused_while_one_is_connected(board: VirtualBoard) -> None:
    with TcpLink(board.endpoints.host, board.endpoints.port) as first:
        assert exchange(first, b"\x01") == b"\x02"
        with TcpLink(board.endpoints.host, board.endpoints.port) as second:
            with pytest.raises(LinkClosedError, match="another host"):
                second.read(timeout=5)
        assert exchange(first, b"\x02") == b"\x03"
    # Once the first host left, a new one is served.
    with TcpLink(board.endpoints.host, board.endpoints.port) as third:
        assert exchange(third, b"\x00") == b"\x02"


def test_reset_command_resets_the_chip(board: VirtualBoard) -> None:
    with TcpLink(board.endpoints.host, board.endpoints.port) as link:
        assert exchange(link, b"\x07\x07\x00") == b"\x08\x08\x02"
        board.reset()
        assert exchange(link, b"\x00") == b"\x00"


def test_unknown_control_command_is_refused(board: VirtualBoard) -> None:
    with pytest.raises(BoardError, match="unknown command 'fly'"):
        virtual_board.control(board.endpoints, "fly")


def test_stop_reports_speed(build: BoardBuild) -> None:
    board = VirtualBoard.start(build, pty=False)
    time.sleep(0.5)
    running = board.stats()
    final = board.stop()
    assert board.process.returncode == 0
    assert final["cycles"] >= running["cycles"] > 0
    assert final["cycles_per_s"] > 100_000


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_the_board_cleanly(build: BoardBuild, signal_number: int) -> None:
    board = VirtualBoard.start(build, pty=False)
    board.process.send_signal(signal_number)
    stats = board.wait(timeout=10)
    assert board.process.returncode == 0
    assert stats["cycles"] > 0


def test_max_cycles_runs_exactly_that_many(build: BoardBuild) -> None:
    board = VirtualBoard.start(build, pty=False, max_cycles=123_457, poll_us=10)
    assert board.wait(timeout=10)["cycles"] == 123_457


def test_harness_rejects_bad_options(build: BoardBuild) -> None:
    result = subprocess.run([str(build.executable), "--poll-us", "x"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--poll-us needs a non-negative integer, not 'x'" in result.stderr
    result = subprocess.run([str(build.executable), "--trace", "t.fst"], capture_output=True, text=True)
    assert "--trace needs the traced build" in result.stderr


def test_command_line_board_is_registered_and_simlink_attaches_to_it(build: BoardBuild) -> None:
    # The build fixture makes sure the command line finds a finished build (rebuilt=0).
    command = [sys.executable, "-m", "tessera.sim.virtual_board", "--chip", STANDIN.factory, "--no-pty"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        lines = []
        while not lines or not lines[-1].startswith(virtual_board.LISTENING_PREFIX):
            line = process.stdout.readline()
            assert line, f"board exited before listening: {lines}"
            lines.append(line)
        assert "rebuilt=0" in lines[0]
        endpoints = virtual_board.Endpoints.parse(lines[-1])
        key = virtual_board.design_key(STANDIN, "verilator")
        assert virtual_board.find_running(key) == endpoints
        with SimLink(STANDIN) as link:
            assert link.board is None  # attached, not started
            assert link.endpoints == endpoints
            assert exchange(link, b"\x30") == b"\x31"
        assert virtual_board.find_running(key) == endpoints  # closing an attached link leaves it running
    finally:
        process.send_signal(signal.SIGINT)
        try:
            rest, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()  # its board notices that its parent is gone and stops as well
            raise
    assert process.returncode == 0
    assert virtual_board.STOPPED_PREFIX in rest
    assert virtual_board.find_running(key) is None


def test_chip_spec_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="does not exist"):
        ChipSpec(f"{tmp_path}/nothing.py:Chip").load()
    with pytest.raises(BoardError, match="has no 'Nothing'"):
        ChipSpec(f"{STANDIN_PATH}:Nothing").load()
    with pytest.raises(BoardError, match="module 'tessera.hw.nothing' not found"):
        ChipSpec("tessera.hw.nothing:Chip").load()
    with pytest.raises(BoardError, match="'link' is chosen by the virtual board"):
        ChipSpec(STANDIN.factory, {"link": "uart"})
    with pytest.raises(BoardError, match="must look like"):
        ChipSpec("no_colon")
    with pytest.raises(BoardError, match=r"parameters \{\"tiles\": 8\}: .*unexpected keyword argument 'tiles'"):
        virtual_board.chip_verilog(ChipSpec(STANDIN.factory, {"tiles": 8}))


def test_port_in_use_is_reported(build: BoardBuild) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(BoardError, match="did not start"):
            VirtualBoard.start(build, port=taken.getsockname()[1])


@pytest.mark.slow
def test_trace_writes_only_the_requested_window(tmp_path: Path) -> None:
    traced = virtual_board.build_board(STANDIN, trace=True)
    assert traced.traced and traced.build_dir != virtual_board.build_board(STANDIN).build_dir
    trace = tmp_path / "window.fst"
    with VirtualBoard.start(traced, pty=False, trace=trace, trace_start=100, trace_end=1100) as board:
        with TcpLink(board.endpoints.host, board.endpoints.port) as link:
            assert exchange(link, b"\x20") == b"\x21"
        while board.stats()["cycles"] < 2000:  # the window must be over before the board stops
            time.sleep(0.01)
    # 10 ns per cycle: the first dump is cycle 100's falling edge, the last cycle 1099's rising edge.
    assert fst_time_range(trace) == (1000, 10995)


def test_untraced_build_refuses_trace(build: BoardBuild, tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="needs a traced build"):
        VirtualBoard.start(build, trace=tmp_path / "t.fst")


def test_pgo_build_of_a_chip_without_tiles_is_a_plain_build_that_says_why(build: BoardBuild) -> None:
    # The stand-in has no tiles for ping and pong: the training is refused before the instrumented compile.
    profiled = virtual_board.build_board(STANDIN, pgo=True)
    assert profiled.key != build.key and profiled.build_dir != build.build_dir
    assert profiled.profile is not None and profiled.profile.startswith("untrained: BoardError")
    assert "'tiles'" in profiled.profile
    assert not (profiled.build_dir / "train.log").exists() and not list((profiled.build_dir / "obj").glob("*.gcda"))
    with VirtualBoard.start(profiled, pty=False) as board, TcpLink(board.endpoints.host, board.endpoints.port) as link:
        assert exchange(link, b"\x20") == b"\x21"
    cached = virtual_board.build_board(STANDIN, pgo=True)
    assert not cached.rebuilt and cached.profile == profiled.profile


def test_pgo_is_for_untraced_verilator_builds() -> None:
    for simulator, trace in (("icarus", False), ("verilator", True)):
        with pytest.raises(BoardError, match="untraced Verilator"):
            virtual_board.build_board(STANDIN, simulator=simulator, trace=trace, pgo=True)  # type: ignore[arg-type]


@pytest.mark.slow
def test_pgo_build_trains_on_pingpong_and_keeps_the_profile(tmp_path: Path) -> None:
    profiled = virtual_board.build_board(ChipSpec(params={"tiles": 2}), pgo=True)
    assert profiled.profile == "trained"
    # The profile stays with the build: one .gcda per compiled unit of the model (Verilator splits a large model
    # into several units and compiles a small one as a single Vboard__ALL unit).
    assert list((profiled.build_dir / "obj").glob("Vboard*.gcda"))
    assert not (profiled.build_dir / "train").exists()
    assert "-fprofile-generate" in (profiled.build_dir / "train.log").read_text()
    log = (profiled.build_dir / "build.log").read_text()
    assert "-fprofile-use" in log and "c++ -O2 " in log  # the model at -O2 with the profile
    image = virtual_board.pingpong_image(2, tmp_path)
    with VirtualBoard.start(profiled, pty=False) as board, TcpLink(board.endpoints.host, board.endpoints.port) as link:
        system = DemoSystem(Chip(link, reply_timeout=2.0), image, events=io.StringIO())
        assert system.call("ping", [10])[0] == 20  # ping adds one, pong adds one, ten times


def test_icarus_board_serves_tcp_and_pty_and_resets(icarus_build: BoardBuild) -> None:
    model = StandinModel()
    with VirtualBoard.start(icarus_build) as board:
        with TcpLink(board.endpoints.host, board.endpoints.port) as link:
            data = bytes(range(256))
            assert exchange(link, data, timeout=60) == model.reply(data)
            board.reset()
            assert exchange(link, b"\x00\x00") == b"\x00\x01"
        assert board.endpoints.pty is not None
        with SerialLink(board.endpoints.pty) as link:
            assert exchange(link, b"\x00\x33") == b"\x02\x34"
        stats = board.stats()
    final = board.final_stats
    assert final is not None and final["cycles"] >= stats["cycles"] > 256
    assert final["rx_bytes"] == final["tx_bytes"] == 256 + 2 + 2


def test_icarus_board_traces_a_window_and_stops_at_max_cycles(icarus_build: BoardBuild, tmp_path: Path) -> None:
    trace = tmp_path / "icarus.fst"
    board = VirtualBoard.start(icarus_build, pty=False, trace=trace, trace_start=100, trace_end=1100, max_cycles=5000)
    assert board.wait(timeout=60)["cycles"] == 5000
    # The Icarus testbench dumps at both clock edges from cycle 100 up to the start of cycle 1100.
    assert fst_time_range(trace) == (1000, 11000)


def test_simlink_on_icarus() -> None:
    with SimLink(STANDIN, simulator="icarus") as link:
        assert exchange(link, b"\x61\x00", timeout=30) == b"\x62\x01"


#: The smallest real chip, and an app of one service (the ping-pong demo's pong) for it.
TINY_CHIP = {"tiles": 1, "mem_bytes": 1024, "mailbox_depth": 2}
PONG_APP = """[app]
name = "pong"

[chip]
tiles = 1
mem_bytes = 1024
mailbox_depth = 2

[services.pong]
source = "pong.py"

[supervisors.root]
strategy = "one_for_one"
children = ["pong"]
"""


def test_icarus_board_of_the_real_chip_boots_a_service(tmp_path: Path) -> None:
    # The real chip top (not the stand-in) on Icarus: it must come out of reset fully defined (see ICARUS_ARGS).
    build = virtual_board.build_board(ChipSpec(params=TINY_CHIP), simulator="icarus")
    shutil.copy(DEMOS_ROOT / "pingpong" / "pong.py", tmp_path / "pong.py")
    write_image(build_image(parse_manifest(PONG_APP, tmp_path / "app.toml")), tmp_path / "pong.tsi")
    with VirtualBoard.start(build, pty=False) as board:
        with TcpLink(board.endpoints.host, board.endpoints.port) as link:
            chip = Chip(link, reply_timeout=30)
            assert chip.info.tile_count == 1
            system = DemoSystem(chip, tmp_path / "pong.tsi", events=io.StringIO())
            assert system.call("pong", [41], timeout=60) == (42,)


def test_board_option_names_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    """`tessera sim --board NAME` picks a board build's chip: it takes no --chip/--param, and an unknown board is named
    with the boards there are (before anything is built)."""
    with pytest.raises(SystemExit):
        virtual_board.main(["--board", "icebreaker", "--param", "leds=1", "--build-only"])
    assert "--board chooses the chip and its parameters: leave out --chip and --param" in capsys.readouterr().err
    assert virtual_board.main(["--board", "icebreakr", "--build-only"]) == 1
    assert ("board 'icebreakr': expected one of hx8k, icebreaker, icestick, upduino"
            in capsys.readouterr().err.splitlines()[-1])
