"""Persistent services on the fake chip: snapshots saved next to the image, restored before the service runs
again after a restart and after a power cycle (a new chip), refused when another build saved them."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

from tessera.firmware.isa import Cause
from tessera.os.build import build_image
from tessera.os.chip import Chip
from tessera.os.image import TileImage, read_image, write_image
from tessera.os.persist import Snapshots
from tessera.os.manifest import load_manifest
from tessera.os.runner import Runner
from tessera.os.service_build import runtime

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake


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
__state_start:
{state}__state_end:
__image_end:
"""
#: The keeper's state: one word, `total`.
TOTAL = "total:\n    .word 0\n"


def system(folder: Path, *, state: str = TOTAL, init: str = "", snapshot_of: str = "total") -> Path:
    """The keeper on tile 1, persistent: `state` = its state fields (assembly), `init` = instructions before
    init's `ret` (another build of the same fields), `snapshot_of` = the label whose address its snapshot names."""
    source = KEEPER.replace("{state}", state).replace("init:\n", f"init:\n{init}").replace(
        "la a3, total", f"la a3, {snapshot_of}")
    (folder / "keeper.s").write_text(source)
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
    wait_for(runner, lambda: state_file.exists() and saved_fields(tmp_path)[0]["bytes"] == "0c000000")
    chip.inject_fault(1, Cause.WATCHDOG)
    wait_for(runner, lambda: runner.services["keeper"].restarts == 1)
    assert "keeper (tile 1): state restored (1 words)" in out.getvalue()
    assert add(runner, 1) == 13
    wait_for(runner, lambda: saved_fields(tmp_path)[0]["bytes"] == "0d000000")
    runner.shutdown()
    _, runner2, out2 = start(path)  # a new chip: the board was power-cycled
    assert "state restored (1 words)" in out2.getvalue()
    assert add(runner2, 1) == 14


def keeper(path: Path) -> TileImage:
    return next(tile for tile in read_image(path).tiles if tile.service == "keeper")


def saved_fields(folder: Path) -> list[dict[str, object]]:
    return json.loads((folder / "app.keeper.state.json").read_text())["fields"]


def run_once(path: Path, value: int) -> None:
    """Boot `path`, add `value` (snapshotted), shut down."""
    _, runner, _ = start(path)
    assert add(runner, value) == value
    wait_for(runner, lambda: (path.parent / "app.keeper.state.json").exists())
    runner.shutdown()


def test_the_snapshot_stores_the_state_layout_with_the_values(tmp_path: Path) -> None:
    path = system(tmp_path)
    run_once(path, 9)
    total = keeper(path).state_fields[0]
    assert saved_fields(tmp_path) == [{"name": "total", "address": f"{total.address:#x}", "size": 4,
                                       "bytes": (9).to_bytes(4, "little").hex()}]


def test_a_rebuild_with_other_code_and_moved_fields_restores_by_name(tmp_path: Path) -> None:
    run_once(system(tmp_path), 9)
    # other code, a new field before `total` (so it moves) and a new one after it
    path = system(tmp_path, init="    nop\n", state="marker:\n    .word 7\n" + TOTAL + "extra:\n    .word 3\n")
    fields = {state.name: state.address for state in keeper(path).state_fields}
    _, runner, out = start(path)
    assert "keeper (tile 1): state restored (1 words)" in out.getvalue()
    assert add(runner, 1) == 10
    runner.shutdown()  # the new fields kept their initial values
    assert [runner.chip.read_memory(1, fields[name], 1) for name in ("marker", "extra")] == [[7], [3]]


def test_a_field_that_shrank_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    old = system(tmp_path, state="total:\n    .word 0\nwide:\n    .word 0, 0\n")
    tile = keeper(old)
    Snapshots(read_image(old), old).save(tile, {state.address + offset: 5 for state in tile.state_fields
                                                for offset in range(0, state.size, 4)})
    assert [field["size"] for field in saved_fields(tmp_path)] == [4, 8]
    kept = (tmp_path / "app.keeper.state.json").read_text()
    path = system(tmp_path, state="total:\n    .word 0\nwide:\n    .word 0\n")
    _, runner, out = start(path)
    assert ("keeper (tile 1): app.keeper.state.json: field wide of keeper is 4 bytes in this build, 8 when it was "
            "saved: not restored (the file is kept)") in out.getvalue()
    assert (tmp_path / "app.keeper.state.json").read_text() == kept
    assert add(runner, 1) == 1


def test_a_snapshot_outside_the_state_fields_is_dropped(tmp_path: Path) -> None:
    run_once(system(tmp_path), 9)
    kept = (tmp_path / "app.keeper.state.json").read_text()
    path = system(tmp_path, snapshot_of="handle")  # names the code's address: would overwrite `handle`
    _, runner, out = start(path)
    total = keeper(path).state_fields[0].address
    assert add(runner, 1) == 10  # the saved state was restored (same fields)
    wait_for(runner, lambda: "snapshot dropped" in out.getvalue())
    header = runtime().symbols["runtime_end"]
    handle = int.from_bytes(keeper(path).memory[header + 4:header + 8], "little")
    assert (f"keeper (tile 1): snapshot dropped: it writes {handle:#x}, outside the state fields of keeper "
            f"(total {total:#x}..{total + 3:#x})") in out.getvalue()
    runner.shutdown()
    assert (tmp_path / "app.keeper.state.json").read_text() == kept


def test_a_file_of_another_format_is_not_restored(tmp_path: Path) -> None:
    path = system(tmp_path)
    (tmp_path / "app.keeper.state.json").write_text('{"format": 1, "memory_crc": 0, "words": {"0xa0": 5}}\n')
    _, runner, out = start(path)
    assert ("keeper (tile 1): app.keeper.state.json is unreadable or was written by another version of tessera: "
            "not restored") in out.getvalue()
    assert add(runner, 1) == 1
