"""`tessera build` and `tessera inspect` on the example system (tests/data/system): the image holds working tiles
(run here on the golden tile model), and build errors are one clear line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tessera.firmware import cc
from tessera.firmware.isa import Cause, TileState
from tessera.os import service_build
from tessera.os.build import BuildError, build_image
from tessera.os.cli import main
from tessera.os.image import RuntimeImage, TileImage, read_image
from tessera.os.manifest import load_manifest
from tessera.os.service_runner import Outgoing
from tessera.os.service_tile import ScriptedMessageUnit
from tessera.sim.model import TileModel

DATA = Path(__file__).parent / "data" / "system"
HOST = 127


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> RuntimeImage:
    output = tmp_path_factory.mktemp("build") / "app.tsi"
    assert main(["build", str(DATA / "app.toml"), "-o", str(output)]) == 0
    return read_image(output)


class Tile:
    """One tile of the image on the golden model, with its permissions enforced by the scripted message unit."""

    def __init__(self, image: RuntimeImage, service: str) -> None:
        self.tile: TileImage = image.tile_of(service)
        chip = image.chip
        permitted = {HOST if bit == chip.tiles else bit for bit in range(chip.tiles + 1)
                     if self.tile.permissions >> bit & 1}
        self.unit = ScriptedMessageUnit(frozenset(permitted))
        self.model = TileModel(chip.mem_bytes, tile_id=self.tile.tile, message_unit=self.unit)
        self.model.load_bytes(self.tile.memory)

    def deliver(self, sender: int, tag: int, *words: int) -> list[Outgoing]:
        before = len(self.unit.sent)
        self.unit.mailbox.append((sender, tag, words))
        for _ in range(200):
            self.model.run(100)
            assert self.model.state is not TileState.TRAPPED, f"trapped with cause {self.model.cause}"
            if self.unit.waiting and not self.unit.mailbox:
                return self.unit.sent[before:]
        raise AssertionError("the service did not go back to waiting for a message")


def test_build_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "out.tsi"
    assert main(["build", str(DATA / "app.toml"), "-o", str(output)]) == 0
    assert capsys.readouterr().out.startswith(f"{output}: 4 services on 8 tiles of 1024 bytes")
    assert output.stat().st_size > 1000


def test_build_defaults_to_the_manifest_name(tmp_path: Path) -> None:
    for source in DATA.iterdir():
        shutil.copy(source, tmp_path)
    assert main(["build", str(tmp_path / "app.toml")]) == 0
    assert read_image(tmp_path / "app.tsi").app == "demo"


def test_image_contents(image: RuntimeImage) -> None:
    assert image.start_order() == ("echo", "counter", "relay", "squares")
    assert image.tile_of("echo").tile == 7
    assert image.tile_of("counter").persist and not image.tile_of("echo").persist
    assert image.manifest_text == (DATA / "app.toml").read_text()
    names = {entry.name: entry.address for entry in image.names}
    assert names["host"] == HOST and all(names[s] == image.tile_of(s).tile for s in image.start_order())
    counter = image.tile_of("counter").tile
    # relay sends to counter; counter may answer relay and squares (they send to it); everyone may reach the host.
    assert image.tile_of("relay").permissions == 1 << counter | 1 << 8
    repliers = 1 << image.tile_of("relay").tile | 1 << image.tile_of("squares").tile
    assert image.tile_of("counter").permissions == repliers | 1 << 8
    assert image.tile_of("echo").permissions == 1 << 8
    assert all(tile.supervisor == HOST for tile in image.tiles)
    assert [(m.to, m.address, m.tag, m.words) for m in image.messages] == [
        ("counter", counter, 1, (100,)), ("echo", 7, 0, (1, 2, 3))]


def test_assembly_services_run_on_the_tile_model(image: RuntimeImage) -> None:
    echo = Tile(image, "echo")
    assert echo.deliver(HOST, 5, 42, 43) == [Outgoing(HOST, 5, (42,))]
    counter = Tile(image, "counter")
    relay_tile = image.tile_of("relay").tile
    assert counter.deliver(relay_tile, 1, 10) == [Outgoing(relay_tile, 1, (10,))]
    assert counter.deliver(HOST, 2, 5) == [Outgoing(HOST, 2, (15,))]
    relay = Tile(image, "relay")
    assert relay.deliver(HOST, 0, 9) == [Outgoing(image.tile_of("counter").tile, 1, (9,))]


def test_python_service_runs_on_the_tile_model(image: RuntimeImage) -> None:
    squares = Tile(image, "squares")
    assert squares.deliver(HOST, 0, 4) == [Outgoing(image.tile_of("counter").tile, 0, (4,)),
                                          Outgoing(HOST, 0, (1 + 4 + 9 + 16,))]


def test_inspect_prints_tiles_services_names_tree_and_permissions(image: RuntimeImage, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "app.tsi"
    assert main(["build", str(DATA / "app.toml"), "-o", str(output)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(output)]) == 0
    text = capsys.readouterr().out
    counter = image.tile_of("counter")
    assert "chip: 8 tiles x 1024 bytes, mailbox depth 4, host node 127" in text
    assert f"  {counter.tile:>4}  counter  assembly  {len(counter.memory):>5}" in text
    assert "persist  counter.s" in text
    assert "(free)" in text
    assert "  host     -> 127 (host)" in text
    assert "  root [one_for_one, at most 3 restarts in 5 s]\n    echo (tile 7)\n" \
           "    workers [rest_for_one, at most 2 restarts in 10 s]\n" in text
    assert "  relay    -> counter, host  (DOWN to host)" in text
    assert main(["inspect", "--manifest", str(output)]) == 0
    assert capsys.readouterr().out == (DATA / "app.toml").read_text()


def test_inspect_refuses_a_corrupt_image_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "app.tsi"
    assert main(["build", str(DATA / "app.toml"), "-o", str(output)]) == 0
    data = bytearray(output.read_bytes())
    data[100] ^= 1
    output.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["inspect", str(output)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"tessera: error: {output}: checksum mismatch" + captured.err.split("checksum mismatch")[1]
    assert captured.err.count("\n") == 1


# -- build refusals -------------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for source in DATA.iterdir():
        shutil.copy(source, tmp_path)
    return tmp_path


def build_error(folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["build", str(folder / "app.toml"), "-o", str(folder / "out.tsi")]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("tessera: error: ")
    assert not (folder / "out.tsi").exists()
    return captured.err


def test_assembly_service_too_big_gives_both_sizes(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (folder / "echo.s").open("a") as source:
        source.write("    .data\n    .space 900\n")
    # __image_end is no longer the last line: move it after the padding.
    text = (folder / "echo.s").read_text().replace("__image_end:\n", "") + "__image_end:\n"
    (folder / "echo.s").write_text(text)
    error = build_error(folder, capsys)
    match = re.search(r"services\.echo\.source: service 'echo' needs (\d+) bytes \((\d+) runtime \+ (\d+) code and "
                      r"data \+ 64 stack\), but a tile has 1024 bytes", error)
    assert match, error
    need, runtime, code = map(int, match.groups())
    assert need == runtime + code + 64 and code > 900 and runtime == len(service_build.runtime().image)


def test_python_service_too_big(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "squares.py").write_text((folder / "squares.py").read_text().replace(
        "requests: int = 0", "requests: int = 0\n    table: Array[int, 300]").replace(
        "import Message", "import Array, Message"))
    error = build_error(folder, capsys)
    assert "services.squares.source:" in error and "does not fit a 1024-byte tile" in error


def test_python_service_sending_to_an_undeclared_name(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (folder / "app.toml").read_text()
    (folder / "app.toml").write_text(manifest.replace('source = "squares.py"\nsends = ["counter"]',
                                                      'source = "squares.py"\nsends = ["relay"]'))
    error = build_error(folder, capsys)
    assert f"services.squares.sends: {folder / 'squares.py'} sends to 'counter', " \
           "which `sends` does not declare" in error


def test_assembly_service_naming_an_undeclared_node(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (folder / "app.toml").read_text()
    (folder / "app.toml").write_text(manifest.replace('source = "relay.s"\nsends = ["counter"]',
                                                      'source = "relay.s"'))
    error = build_error(folder, capsys)
    line = (folder / "relay.s").read_text().splitlines().index(
        "    li t1, NODE_counter         # the counter's tile, resolved at build time from `sends`") + 1
    assert f"services.relay.source: {folder / 'relay.s'}:{line}:12: NODE_counter is undefined: " \
           "services.relay.sends does not declare 'counter'" in error


def test_assembly_service_without_header(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (folder / "echo.s").read_text().replace("    .word init, handle, TILE_MEM_BYTES, __image_end", "")
    (folder / "echo.s").write_text(text)
    assert "must start with the service header" in build_error(folder, capsys)


def test_build_refuses_a_bad_manifest_in_one_line(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (folder / "app.toml").read_text()
    (folder / "app.toml").write_text(manifest.replace("tile = 7", "tile = 8"))
    error = build_error(folder, capsys)
    assert "app.toml:13: services.echo.tile: pinned to tile 8, but the chip has tiles 0..7" in error


def test_build_error_from_the_api_names_the_manifest(folder: Path) -> None:
    (folder / "counter.s").write_text((folder / "counter.s").read_text().replace("add t0, t0, t1", "addd t0, t0, t1"))
    with pytest.raises(BuildError, match=r"app\.toml:\d+: services\.counter\.source: .*counter\.s:12:5: "):
        build_image(load_manifest(folder / "app.toml"))


def test_console_script_entry_point(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("tessera")
    result = subprocess.run([str(script), "inspect", str(tmp_path / "none.tsi")], capture_output=True, text=True)
    assert result.returncode == 1
    missing = tmp_path / "none.tsi"
    assert result.stderr == f"tessera: error: {missing}: cannot read the image: No such file or directory\n"


C_MANIFEST = """
[chip]
tiles = 2
mem_bytes = 1024
mailbox_depth = 4

[services.answer]
source = "answer.c"
bare = true
stack = 128

[supervisors.root]
strategy = "one_for_one"
children = ["answer"]
"""


@pytest.mark.skipif(not cc.toolchain_available(), reason="needs riscv64-unknown-elf-gcc")
def test_c_service_is_a_bare_tile_image(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(C_MANIFEST)
    (tmp_path / "answer.c").write_text("int main(void) { return 42; }\n")
    image = build_image(load_manifest(tmp_path / "app.toml"))
    tile = image.tile_of("answer")
    assert tile.bare and tile.stack_bytes == 128 and tile.code_bytes == len(tile.memory)
    model = TileModel(1024)
    model.load_bytes(tile.memory)
    model.run(1000)
    assert (model.state, model.cause, model.regs[10]) == (TileState.TRAPPED, Cause.ECALL, 42)


@pytest.mark.skipif(not cc.toolchain_available(), reason="needs riscv64-unknown-elf-gcc")
def test_c_service_too_big(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(C_MANIFEST)
    (tmp_path / "answer.c").write_text("char big[1000];\nint main(void) { return big[3]; }\n")
    with pytest.raises(BuildError) as error:
        build_image(load_manifest(tmp_path / "app.toml"))
    assert "\n" not in str(error.value)
    assert re.search(r"services\.answer\.source: service 'answer' does not fit a 1024-byte tile with 128 bytes of "
                     r"stack \(the linker: region `ram' overflowed by \d+ bytes\)", str(error.value)), str(error.value)


@pytest.mark.skipif(not cc.toolchain_available(), reason="needs riscv64-unknown-elf-gcc")
def test_c_compile_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text(C_MANIFEST)
    (tmp_path / "answer.c").write_text("int main(void) { return missing; }\n")
    with pytest.raises(BuildError) as error:
        build_image(load_manifest(tmp_path / "app.toml"))
    assert "\n" not in str(error.value) and "answer.c:1:" in str(error.value) and "missing" in str(error.value)
