"""Host links (tessera.os.link): target parsing, one-line errors, and SimLink's own board on the stand-in chip."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tessera.os.link import (
    DEFAULT_BAUD,
    LinkError,
    LinkTargetError,
    LinkTimeoutError,
    SerialLink,
    SimLink,
    TcpLink,
    open_link,
    parse_target,
)
from tessera.sim.virtual_board import ChipSpec

STANDIN = ChipSpec(f"{Path(__file__).with_name('vboard_standin.py')}:StandinChip")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("target", "kind", "attributes"),
    [
        ("tcp:127.0.0.1:4000", TcpLink, {"host": "127.0.0.1", "port": 4000}),
        ("tcp:[::1]:4000", TcpLink, {"host": "::1", "port": 4000}),
        ("serial:/dev/ttyUSB1", SerialLink, {"device": "/dev/ttyUSB1", "baud": DEFAULT_BAUD}),
        ("serial:/dev/ttyUSB1@3000000", SerialLink, {"device": "/dev/ttyUSB1", "baud": 3_000_000}),
        ("sim", SimLink, {"simulator": "verilator"}),
        ("sim:icarus", SimLink, {"simulator": "icarus"}),
    ],
)
def test_targets_parse(target: str, kind: type, attributes: dict[str, object]) -> None:
    link = parse_target(target)
    assert isinstance(link, kind)
    assert not link.is_open
    for name, value in attributes.items():
        assert getattr(link, name) == value


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("usb", r"bad link target 'usb': expected sim, sim:verilator, sim:icarus, serial:DEVICE\[@BAUD\] or tcp:HOST:PORT"),
        ("tcp:localhost", "bad link target 'tcp:localhost': expected"),
        ("tcp:localhost:99999", "port 99999 is not in 1..65535"),
        ("tcp:localhost:0", "port 0 is not in 1..65535"),
        ("serial:", "bad link target 'serial:': expected"),
        ("serial:/dev/ttyUSB1@fast", "bad link target 'serial:/dev/ttyUSB1@fast': expected"),
        ("serial:/dev/ttyUSB1@0", "the baud rate must be positive"),
        ("sim:modelsim", "simulators are verilator, icarus"),
    ],
)
def test_bad_targets_give_one_line_errors(target: str, message: str) -> None:
    with pytest.raises(LinkTargetError, match=message) as error:
        open_link(target)
    assert "\n" not in str(error.value)


def test_no_board_on_tcp_port() -> None:
    port = free_port()
    with pytest.raises(LinkError, match=rf"^no board at tcp:127.0.0.1:{port}: connection refused$"):
        open_link(f"tcp:127.0.0.1:{port}")


def test_no_board_on_serial_device(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB9"
    with pytest.raises(LinkError, match=rf"^no board at serial:{device}: no such device$"):
        open_link(f"serial:{device}")


def test_closed_link_refuses_io() -> None:
    link = TcpLink("127.0.0.1", free_port())
    with pytest.raises(LinkError, match="link is not open"):
        link.write(b"x")
    with pytest.raises(LinkError, match="link is not open"):
        link.read(0)


def test_simlink_starts_a_board_and_stops_it_on_close() -> None:
    with open_link("sim", chip=STANDIN) as link:
        assert isinstance(link, SimLink)
        board = link.board
        assert board is not None and board.process.poll() is None
        link.write(b"\x41\x00\x42")
        assert link.read_exact(2, timeout=10) == b"\x42\x01"
        # Extra bytes of a chunk stay for the next read; a short read times out and keeps what came.
        assert link.read_exact(1, timeout=10) == b"\x43"
        with pytest.raises(LinkTimeoutError, match="0 of 1 bytes arrived within 0.2 s"):
            link.read_exact(1, timeout=0.2)
        assert link.read(timeout=0.1) == b""
    assert board.process.returncode == 0
    assert board.final_stats is not None and board.final_stats["cycles"] > 0


def test_simlink_read_exact_keeps_surplus_bytes() -> None:
    with SimLink(STANDIN) as link:
        link.write(b"\x01\x02\x03\x04")
        assert link.read_exact(4, timeout=10) == b"\x02\x03\x04\x05"
        link.write(b"\x10\x11\x12")
        first = link.read_exact(1, timeout=10)
        rest = link.read_exact(2, timeout=10)
        assert first + rest == b"\x11\x12\x13"


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie counts: whoever reaps orphans may not have done so yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


@pytest.mark.parametrize("ending", ["exit", "crash"])
def test_simlink_board_ends_with_its_host_process(ending: str) -> None:
    # "exit": the host never closes the link, atexit stops the board; "crash": no atexit, the board notices
    # that its parent is gone.
    script = (
        "import os, sys\n"
        "from tessera.os.link import SimLink\n"
        "from tessera.sim.virtual_board import ChipSpec\n"
        "link = SimLink(ChipSpec(sys.argv[1])).open()\n"
        "print(link.board.process.pid, flush=True)\n"
        "if sys.argv[2] == 'crash':\n"
        "    os._exit(3)\n"
    )
    host = subprocess.run(
        [sys.executable, "-c", script, STANDIN.factory, ending], capture_output=True, text=True, timeout=120
    )
    assert host.returncode == (3 if ending == "crash" else 0), host.stderr
    board_pid = int(host.stdout.split()[0])
    deadline = time.monotonic() + 10
    while not process_gone(board_pid):
        assert time.monotonic() < deadline, f"board {board_pid} still running after its host ended"
        time.sleep(0.05)
