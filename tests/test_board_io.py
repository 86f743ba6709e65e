"""The virtual board's I/O control (`io`, `buttons MASK`; tessera.sim.board_io) on the stand-in chip with LEDs and
buttons, checked against its model; and how the chip top and the OS place the I/O node (address, permissions)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.hw.chip import TesseraChip
from tessera.hw.io_node import IoTag, io_address, io_permission_bit
from tessera.os.build import build_image
from tessera.os.chip import Chip, ChipError
from tessera.os.image import NameKind, permitted_names
from tessera.os.link import TcpLink
from tessera.os.manifest import ManifestError, parse_manifest
from tessera.os.protocol import Feature
from tessera.sim import board_io, virtual_board
from tessera.sim.virtual_board import BoardError, ChipSpec, VirtualBoard

STANDIN_PATH = Path(__file__).with_name("vboard_standin.py")
STANDIN_IO = ChipSpec(f"{STANDIN_PATH}:StandinChip", {"io": True})
StandinModel = STANDIN_IO.load_module().StandinModel


@pytest.fixture(scope="module")
def board() -> Iterator[VirtualBoard]:
    with VirtualBoard.start(virtual_board.build_board(STANDIN_IO), pty=False) as running:
        yield running


def test_host_plays_buttons_and_reads_leds(board: VirtualBoard) -> None:
    endpoints = board.endpoints
    model = StandinModel()
    with TcpLink(endpoints.host, endpoints.port) as link:
        for byte, buttons in ((0x05, 0b0000), (0x05, 0b0011), (0x0A, 0b1000), (0x3C, 0b0001)):
            start = board_io.set_buttons(endpoints, buttons)
            link.write(bytes([byte]))
            assert link.read_exact(1, 10.0) == model.reply(bytes([byte]))
            state = board_io.wait_for_leds(endpoints, model.leds(buttons), timeout=10.0)
            assert state.buttons == buttons and state.cycles >= start
        board_io.press(endpoints, 2, hold_cycles=1000)
        after = board_io.io_state(endpoints)
        assert after.buttons == 0b0001  # pressed and released; button 0 stays down
        assert after.leds == model.leds(0b0001)
    with pytest.raises(BoardError, match="needs a number"):
        virtual_board.control(endpoints, "buttons lots")


def test_io_commands_refused_on_a_chip_without_io() -> None:
    plain = virtual_board.build_board(ChipSpec(f"{STANDIN_PATH}:StandinChip"))
    with VirtualBoard.start(plain, pty=False) as running:
        with pytest.raises(BoardError, match="no LEDs or buttons"):
            board_io.io_state(running.endpoints)
        with pytest.raises(BoardError, match="no buttons"):
            board_io.set_buttons(running.endpoints, 1)


def test_cli_shows_the_board_it_is_told(board: VirtualBoard) -> None:
    where = f"{board.endpoints.host}:{board.endpoints.control_port}"
    result = subprocess.run([sys.executable, "-m", "tessera.os.cli", "io", "--board", where, "buttons", "0b10"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("leds=") and "buttons=0b10 " in result.stdout
    board_io.set_buttons(board.endpoints, 0)
    refused = subprocess.run([sys.executable, "-m", "tessera.os.cli", "io", "--board", "nowhere", "show"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "expected HOST:CONTROL_PORT" in refused.stderr


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_chip_places_the_io_node_after_the_tiles() -> None:
    chip = TesseraChip(tiles=3, mem_bytes=1024, leds=2, buttons=1, link="bytes")
    assert chip.info.features & Feature.IO_NODE and chip.info.mesh_width == 5  # 3 tiles, the node, the host
    assert chip.io is not None and chip.io.port is not None
    assert {"leds", "buttons"} <= set(chip.signature.members)
    plain = TesseraChip(tiles=3, mem_bytes=1024, link="bytes")
    assert plain.io is None and not plain.info.features & Feature.IO_NODE
    assert not {"leds", "buttons"} & set(plain.signature.members)
    with pytest.raises(ValueError, match="leds=9"):
        TesseraChip(tiles=3, leds=9)
    with pytest.raises(ValueError, match="with I/O has 0..125 tiles"):
        TesseraChip(tiles=126, buttons=1)
    bare = TesseraChip(tiles=0, mem_bytes=1024, leds=5, link="bytes")  # the host link and the I/O node only
    assert bare.nodes == [] and bare.info.tile_count == 0 and bare.info.send_destinations == 1
    assert bare.info.features == Feature.IO_NODE  # none of the tiles' features
    assert bare.io is not None and io_address(0) == 0


MANIFEST = """
[chip]
tiles = 4
mem_bytes = 4096
mailbox_depth = 8

[services.panel]
source = "panel.py"
sends = ["button", "lights"]

[services.lights]
source = "lights.py"
sends = ["led"]

[supervisors.root]
strategy = "one_for_one"
children = ["panel", "lights"]
"""

PANEL = """
from tessera.os.service_api import Message, Service, send


class Panel(Service):
    def init(self) -> None:
        send("button", 0, tag=2)

    def handle(self, msg: Message) -> None:
        send("lights", msg[0])
"""

LIGHTS = """
from tessera.os.service_api import Message, Service, send


class Lights(Service):
    def handle(self, msg: Message) -> None:
        send("led", msg[0], tag=1)
"""


def test_manifest_names_the_io_services_and_the_image_permits_them(tmp_path: Path) -> None:
    (tmp_path / "panel.py").write_text(PANEL)
    (tmp_path / "lights.py").write_text(LIGHTS)
    manifest = parse_manifest(MANIFEST, tmp_path / "app.toml")
    image = build_image(manifest)
    io_entries = {entry.name: entry.address for entry in image.names if entry.kind == NameKind.IO}
    assert io_entries == {"led": io_address(4), "button": io_address(4)}
    panel, lights = image.tile_of("panel"), image.tile_of("lights")
    assert panel.permissions >> io_permission_bit(4) & 1 and lights.permissions >> io_permission_bit(4) & 1
    # led and button are one node, behind one permission bit; lights may answer panel, which sends to it
    assert permitted_names(image, lights) == ["panel", "host", "led", "button"]
    with pytest.raises(ManifestError, match="built-in service of the chip's I/O node"):
        parse_manifest(MANIFEST.replace("services.lights", "services.led").replace('"lights"', '"led"'),
                       tmp_path / "app.toml")


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_board_build_wires_the_boards_leds_and_button() -> None:
    from tessera.boards.board_top import BoardTop, io_pins
    from tessera.boards.build import BOARDS, make_chip
    from tessera.boards.pll import pll_config

    board = BOARDS["icebreaker"]
    assert io_pins(board) == {"leds": 2, "buttons": 1}
    assert io_pins(BOARDS["hx8k"]) == {"leds": 8, "buttons": 0}
    chip = make_chip(tile_count=1, mem_bytes=1024, mailbox_depth=4, clock_hz=24_000_000, baud=115_200,
                     **io_pins(board))
    plan = board.platform().prepare(BoardTop(board, chip, pll_config(board.reference_hz, 24e6)), name="tessera")
    pins = [line for line in plan.files["tessera.pcf"].splitlines() if "led" in line or "button" in line]
    assert pins == ["set_io led_0__io 11", "set_io led_1__io 37", "set_io button_0__io 10"]


@pytest.mark.slow
def test_tiles_reach_the_io_node_only_with_its_permission_bit(tmp_path: Path) -> None:
    """On the chip top with the I/O node (the virtual board of demo 6): `lamp` lights the LEDs with the I/O bit of
    its permissions and no host bit, and is stopped with SEND_DENIED with the host bit and no I/O bit, so the
    chip top translates the host's permission layout for the tile nodes."""
    import dataclasses
    import io

    from tessera.firmware.isa import Cause
    from tessera.os.chip import Chip
    from tessera.os.demo_host import DemoSystem, build_demo
    from tessera.os.image import read_image, write_image
    from tessera.os.link import open_link

    image = read_image(build_demo("boardio", tmp_path))
    lamp = image.tile_of("lamp")
    host_bit, io_bit = 1 << image.chip.tiles, 1 << io_permission_bit(image.chip.tiles)
    assert lamp.permissions & host_bit and lamp.permissions & io_bit

    def variant(permissions: int) -> Path:
        tiles = tuple(dataclasses.replace(tile, permissions=permissions) if tile.service == "lamp" else tile
                      for tile in image.tiles)
        path = tmp_path / f"lamp-{permissions:#x}.tsi"
        write_image(dataclasses.replace(image, tiles=tiles), path)
        return path

    with open_link("sim", chip=board_io.io_chip()) as link:
        chip = Chip(link)
        panel = board_io.VirtualPanel(link.endpoints)
        system = DemoSystem(chip, variant(lamp.permissions & ~host_bit), events=io.StringIO())
        try:
            panel.press(0)
            assert panel.leds(0b01) == 0b01
        finally:
            system.close()
        system = DemoSystem(chip, variant(lamp.permissions & ~io_bit), events=io.StringIO())
        try:
            panel.press(0)
            down = system.wait(lambda m: m.is_down and m.source == lamp.tile, "lamp's DOWN report", timeout=60)
            assert down.down().cause == Cause.SEND_DENIED
        finally:
            system.close()


def test_run_refuses_io_services_on_a_chip_without_the_io_node(tmp_path: Path) -> None:
    import host_os_fakechip as fake

    from tessera.os.chip import Chip
    from tessera.os.runner import ChipMismatch, Runner

    (tmp_path / "panel.py").write_text(PANEL)
    (tmp_path / "lights.py").write_text(LIGHTS)
    image = build_image(parse_manifest(MANIFEST, tmp_path / "app.toml"))
    chip = Chip(fake.FakeChipLink(fake.FakeChip(tiles=4, mem_bytes=4096, mailbox_depth=8)).open(), reply_timeout=0.2)
    with pytest.raises(ChipMismatch, match="the image sends to led, button, the chip has no I/O node"):
        Runner(chip, image, out=sys.stderr).check_chip()


def test_chip_without_tiles_lights_leds_for_the_host(tmp_path: Path) -> None:
    """The real chip with no tiles (host link and I/O node only, as on the iCEstick) under Verilator: IDENTIFY reports
    it, the host lights LEDs with `tessera send led`, subscribes to the button and hears its press, and a tile
    command and an image name the problem."""
    from tessera.os.runner import ChipMismatch, Runner

    (tmp_path / "panel.py").write_text(PANEL)
    (tmp_path / "lights.py").write_text(LIGHTS)
    image = build_image(parse_manifest(MANIFEST, tmp_path / "app.toml"))
    spec = ChipSpec("tessera.hw.chip:TesseraChip",
                    {"tiles": 0, "leds": 5, "buttons": 1, "mem_bytes": 1024, "core": "bit"})
    with VirtualBoard.start(virtual_board.build_board(spec), pty=False) as running:
        endpoints = running.endpoints
        target = f"tcp:{endpoints.host}:{endpoints.port}"
        with TcpLink(endpoints.host, endpoints.port) as link:
            chip = Chip(link)
            info = chip.identify()
            assert info.tile_count == 0 and info.features & Feature.IO_NODE
            chip.send(io_address(0), IoTag.SET_LEDS, [0b10110])
            assert board_io.wait_for_leds(endpoints, 0b10110, timeout=10.0).leds == 0b10110
            with pytest.raises(ChipError, match=r"no such tile \(the chip has no tiles, the I/O node is node 0\)"):
                chip.status(0)
            # The host subscribes to the button; a press arrives as a BUTTON_EVENT pushed to the host.
            chip.send(io_address(0), IoTag.SUBSCRIBE, [0])
            board_io.press(endpoints, 0)
            event = chip.take(lambda message: message.tag == IoTag.BUTTON_EVENT, 10.0)
            assert event is not None and event.source == io_address(0) and event.words[0] & 0xFF == 0b1
            with pytest.raises(ChipMismatch, match=r"has no tiles \(the host link and the I/O node only\), so it runs"):
                Runner(chip, image, out=sys.stderr).check_chip()
        tag = str(int(IoTag.SET_LEDS))
        sent = subprocess.run([sys.executable, "-m", "tessera.os.cli", "send", "led", "0b01001", "--tag", tag,
                               "--target", target], capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        assert board_io.wait_for_leds(endpoints, 0b01001, timeout=10.0).leds == 0b01001
        identified = subprocess.run([sys.executable, "-m", "tessera.os.cli", "identify", "--target", target],
                                    capture_output=True, text=True, timeout=60)
        assert identified.returncode == 0, identified.stderr
        assert identified.stdout.splitlines()[1:3] == [
            "tiles: none (the host link and the I/O node only)", "I/O node: node 0, services led, button"]
        refused = subprocess.run([sys.executable, "-m", "tessera.os.cli", "send", "3", "1", "--target", target],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "give --image (the chip has no tiles)" in refused.stderr
