"""Persistent services on the fake chip: snapshots saved next to the image, restored before the service runs
again after a restart and after a power cycle (a new chip), refused when another build saved them."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import time
from pathlib import Path

from tessera.firmware.isa import Cause
from tessera.os.build import build_image
from tessera.os.chip import Chip
from tessera.os.image import read_image, write_image
from tessera.os.manifest import load_manifest
from tessera.os.runner import Runner


def _load_fake():
    name = "host_os_fakechip"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _load_fake()

# Adds each message's first word to `total`, snapshots it (data + commit), replies with the total.
KEEPER = """
    .text
    .word init, handle, TILE_MEM_BYTES, __image_end
init:
    ret
handle:
    lw t0, total(zero)
    lw t1, MSG_WORDS(a0)
    add t0, t0, t1
    sw t0, total(zero)
    li a1, HOST_NODE
    li a2, 0xFFFD
    la a3, total
    .word 0x0006800b            # msg.put a3: address
    .word 0x0002800b            # msg.put t0: the word there
    .word 0x00c5900b            # msg.send a1, a2
    li a3, -1
    .word 0x0006800b            # msg.put a3: COMMIT
    li a3, 1
    .word 0x0006800b            # msg.put a3: of 1 data word
    .word 0x00c5900b            # msg.send a1, a2
    .word 0x0002800b            # msg.put t0
    lw t1, MSG_SENDER(a0)
    lw t2, MSG_TAG(a0)
    .word 0x0073100b            # msg.send t1, t2
    ret
    .data
total:
    .word 0
__image_end:
"""


def system(folder: Path, *, rebuilt: bool = False) -> Path:
    (folder / "keeper.s").write_text(KEEPER.replace("init:\n", "init:\n    nop\n") if rebuilt else KEEPER)
    (folder / "app.toml").write_text("""[chip]
tiles = 2
mem_bytes = 1024
mailbox_depth = 4
[services.keeper]
source = "keeper.s"
persist = true
tile = 1
[supervisors.root]
strategy = "one_for_one"
max_restarts = 5
children = ["keeper"]
""")
    path = folder / "app.tsi"
    write_image(build_image(load_manifest(folder / "app.toml")), path)
    return path


def add(runner: Runner, value: int) -> int:
    runner.chip.send(1, 0, [value])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in runner.chip.poll(0.05):
            if message.source == 1 and message.tag == 0:
                return message.words[0]
            runner.handle(message)
    raise AssertionError("no reply")


def start(path: Path, chip=None) -> tuple[object, Runner, io.StringIO]:
    chip = chip or fake.FakeChip(tiles=2)
    out = io.StringIO()
    runner = Runner(Chip(fake.FakeChipLink(chip).open(), reply_timeout=0.2), read_image(path), image_path=path,
                    out=out, progress=io.StringIO())
    runner.boot()
    return chip, runner, out


def wait_for(runner: Runner, condition) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        for message in runner.chip.poll(0.05):
            runner.handle(message)


def test_state_survives_restart_and_power_cycle(tmp_path: Path) -> None:
    path = system(tmp_path)
    chip, runner, out = start(path)
    assert add(runner, 5) == 5 and add(runner, 7) == 12
    state_file = tmp_path / "app.keeper.state.json"
    wait_for(runner, lambda: state_file.exists() and "12" in json.dumps(json.loads(state_file.read_text())["words"]))
    chip.inject_fault(1, Cause.WATCHDOG)
    wait_for(runner, lambda: runner.services["keeper"].restarts == 1)
    assert "keeper (tile 1): state restored (1 words)" in out.getvalue()
    assert add(runner, 1) == 13
    wait_for(runner, lambda: "13" in state_file.read_text())
    runner.shutdown()
    _, runner2, out2 = start(path)  # a new chip: the board was power-cycled
    assert "state restored (1 words)" in out2.getvalue()
    assert add(runner2, 1) == 14


def test_snapshot_of_another_build_is_not_restored(tmp_path: Path) -> None:
    path = system(tmp_path)
    _, runner, _ = start(path)
    assert add(runner, 9) == 9
    wait_for(runner, lambda: (tmp_path / "app.keeper.state.json").exists())
    runner.shutdown()
    (tmp_path / "keeper.s").unlink()
    path = system(tmp_path, rebuilt=True)  # another build: the memory image differs
    _, runner2, out2 = start(path)
    assert "app.keeper.state.json is unreadable or was saved by another build of keeper: not restored" in out2.getvalue()
    assert add(runner2, 1) == 1
