"""The chip-facing commands' output: through a running session (`tessera run` serving the target) and straight
over a TCP link to the fake chip when no session runs; user mistakes are one line with exit status 1."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tessera.os.chip import Chip
from tessera.os.cli import main
from tessera.os.image import read_image
from tessera.os.runner import Runner

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake


TARGET = "tcp:127.0.0.1:9"  # never opened: the session answers for it


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    image_path = fake.write_system(tmp_path)
    runner = Runner(Chip(fake.FakeChipLink(fake.FakeChip()).open(), reply_timeout=0.2), read_image(image_path),
                    image_path=image_path, out=io.StringIO(), progress=io.StringIO())
    runner.boot()
    with fake.serving(runner, TARGET):
        yield runner, image_path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_call_send_ps_stop_restart_through_the_session(session, capsys) -> None:
    runner, image_path = session
    assert run_cli(capsys, "call", "b", "41", "--tag", "1", "--target", TARGET) == (0, "42\n", "")
    assert run_cli(capsys, "call", "c", "0xff", "--tag", "1", "--target", TARGET)[1] == "256\n"
    assert run_cli(capsys, "send", "a", "7", "--tag", "2", "--target", TARGET) == (0, "sent to a: 7\n", "")
    assert run_cli(capsys, "stop", "c", "--target", TARGET) == (0, "stopped c\n", "")
    status, out, _ = run_cli(capsys, "ps", "--target", TARGET)
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["tile", "service", "state", "restarts", "msgs", "in", "msgs", "out"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows["b"] == ["2", "b", "sleeping", "0", "1", "1"]
    assert rows["c"][:4] == ["3", "c", "stopped", "0"]
    assert run_cli(capsys, "restart", "c", "--target", TARGET) == (0, "restarted c\n", "")
    assert run_cli(capsys, "call", "c", "1", "--tag", "1", "--target", TARGET)[1] == "2\n"
    rows = {line.split()[1]: line.split() for line in run_cli(capsys, "ps", "--target", TARGET)[1].splitlines()[1:]}
    assert rows["c"][2:4] == ["sleeping", "1"]
    assert "a (tile 1): log: 7" in runner.out.getvalue()
    status, out, err = run_cli(capsys, "logs", str(image_path), "-n", "3")
    assert status == 0 and len(out.splitlines()) == 3


def test_send_to_the_leds_through_the_session(tmp_path: Path, monkeypatch, capsys) -> None:
    """On a chip with the I/O node the session sends `led` to the node itself: no service, no tile."""
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    image_path = fake.write_system(tmp_path)
    chip = fake.FakeChip(io=True)
    runner = Runner(Chip(fake.FakeChipLink(chip).open(), reply_timeout=0.2), read_image(image_path),
                    image_path=image_path, out=io.StringIO(), progress=io.StringIO())
    runner.boot()
    with fake.serving(runner, TARGET):
        assert run_cli(capsys, "send", "led", "0b101", "--tag", "1", "--target", TARGET) == (0, "sent to led: 5\n", "")
        assert chip.leds == 0b101
        assert run_cli(capsys, "listen", "--target", TARGET)[2] == (
            f"tessera: error: `tessera run` serves {TARGET} and prints the host's messages itself\n")
        assert run_cli(capsys, "send", "a", "7", "--tag", "2", "--target", TARGET)[0] == 0  # the tiles as before
        assert run_cli(capsys, "identify", "--target", TARGET) == (0, (
            f"chip at {TARGET}: protocol v1, clock 12.000 MHz\n"
            "tiles: 4 x 1024 bytes of memory, mailbox depth 4\n"
            "I/O node: node 4, services led, button\n"
            "host: node 127; 4 words per message, 32 per memory frame\n"
            "features: MESSAGE_COUNTERS, SEND_PERMISSIONS, SUPERVISOR, MESSAGE_UNIT, IO_NODE\n"), "")


def test_user_mistakes_are_one_line(session, capsys) -> None:
    assert run_cli(capsys, "call", "nobody", "1", "--target", TARGET) == (
        1, "", "tessera: error: no service 'nobody' in " + str(session[1]) + " (services: solo, a, b, c)\n")
    status, _, err = run_cli(capsys, "call", "b", "1", "--tag", "99", "--timeout", "0.3", "--target", TARGET)
    assert status == 1 and err == "tessera: error: no reply from b within the timeout\n"  # b crashed instead
    assert run_cli(capsys, "send", "a", "1", "2", "3", "4", "5", "--target", TARGET)[2] == (
        "tessera: error: a message carries 1..4 words, not 5\n")
    assert run_cli(capsys, "send", "a", "x1", "--target", TARGET)[2] == (
        "tessera: error: word 'x1' is not a number (decimal or 0x hex)\n")
    assert run_cli(capsys, "send", "led", "1", "--tag", "1", "--target", TARGET)[2] == (
        "tessera: error: 'led' is a service of the I/O node, and the chip at fake:chip has none\n")
    assert run_cli(capsys, "call", "button", "0", "--target", TARGET)[2] == (
        "tessera: error: 'button' is a service of the I/O node, which never replies: use `tessera send button ...`\n")


def test_commands_without_a_session_drive_the_chip_over_the_link(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    image_path = fake.write_system(tmp_path)
    chip = fake.FakeChip()
    Runner(Chip(fake.FakeChipLink(chip).open()), read_image(image_path), out=io.StringIO(),
           progress=io.StringIO()).boot()  # as an earlier `tessera run` left it
    board = fake.FakeBoardServer(chip)
    try:
        target, image = board.target, str(image_path)
        assert run_cli(capsys, "call", "a", "1", "--tag", "1", "--target", target, "--image", image)[1] == "2\n"
        assert run_cli(capsys, "call", "3", "5", "--tag", "1", "--target", target)[1] == "6\n"  # a tile number
        status, out, _ = run_cli(capsys, "ps", "--target", target, "--image", image)
        rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
        assert status == 0 and rows["1"][:3] == ["1", "a", "sleeping"] and rows["1"][3] == "-"
        assert run_cli(capsys, "stop", "b", "--target", target, "--image", image)[1] == "stopped b\n"
        assert "halted" in run_cli(capsys, "ps", "--target", target)[1].splitlines()[3]
        assert run_cli(capsys, "restart", "b", "--target", target, "--image", image)[1] == "restarted b\n"
        assert run_cli(capsys, "call", "b", "9", "--tag", "1", "--target", target, "--image", image)[1] == "10\n"
        assert run_cli(capsys, "send", "b", "1", "--target", target)[2] == (
            "tessera: error: unknown service 'b': no `tessera run` session serves this target; give --image or a "
            "tile number 0..3\n")
        assert run_cli(capsys, "send", "led", "1", "--target", target)[2] == (
            f"tessera: error: 'led' is a service of the I/O node, and the chip at {target} has none\n")
        status, out, _ = run_cli(capsys, "identify", "--target", target)
        assert status == 0 and out.splitlines()[1:3] == [
            "tiles: 4 x 1024 bytes of memory, mailbox depth 4", "I/O node: none"]
        # a logs 7: a message to the host, which `listen` prints (the bridge pushes it again to the new connection)
        assert run_cli(capsys, "send", "a", "7", "--tag", "2", "--target", target, "--image", image)[0] == 0
        status, out, _ = run_cli(capsys, "listen", "--count", "1", "--seconds", "10", "--target", target)
        assert status == 0 and out.splitlines()[0] == "node 1 tag 0xffff: 7"
        assert run_cli(capsys, "listen", "--seconds", "0", "--target", target)[2] == (
            "tessera: error: --seconds must be above 0 and --count at least 1\n")
    finally:
        board.close()
    assert run_cli(capsys, "ps", "--target", board.target)[2].startswith(
        f"tessera: error: no board at {board.target}: connection refused")
