"""The run loop on the fake chip: boot, the chip-parameter check, and supervision end to end: a tile killed by a
fault under each strategy, who restarts, that nothing else is touched, intensity escalation, clean shutdown."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from tessera.firmware.isa import TileState
from tessera.os.chip import Chip
from tessera.os.image import read_image
from tessera.os.runner import ChipMismatch, Runner, event_log_path

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake


SOLO, A, B, C = 0, 1, 2, 3
NAMES = ("solo", "a", "b", "c")


def boot(image_path: Path, chip=None) -> tuple[object, Runner, io.StringIO]:
    chip = chip or fake.FakeChip()
    client = Chip(fake.FakeChipLink(chip).open(), reply_timeout=0.2)
    out = io.StringIO()
    runner = Runner(client, read_image(image_path), image_path=image_path, out=out, progress=io.StringIO())
    runner.boot()
    return chip, runner, out


def pump_until(runner: Runner, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        for message in runner.chip.poll(0.05):
            runner.handle(message)


def test_boot_loads_verifies_configures_and_starts_in_order(tmp_path: Path) -> None:
    chip, runner, out = boot(fake.write_system(tmp_path))
    image = runner.image
    for tile in image.tiles:
        assert bytes(chip.tiles[tile.tile].mem[:len(tile.memory)]) == tile.memory
        assert chip.config[tile.tile] == {0: tile.permissions, 1: tile.supervisor}
    runs = [tile for op, tile in chip.control_log if op == "run"]
    assert runs == [SOLO, A, B, C]  # the supervision tree's start order
    pump_until(runner, lambda: "solo (tile 0): message tag 1: 42" in out.getvalue())  # the initial message
    text = out.getvalue()
    assert "started: tile 2 service b supervisor group: cause start (first start)" in text
    assert "loaded and verified" in runner.progress.getvalue()


@pytest.mark.parametrize(("strategy", "restarted"), [
    ("one_for_one", [B]),
    ("one_for_all", [A, B, C]),
    ("rest_for_one", [B, C]),
])
def test_fault_restarts_only_the_strategy_s_tiles(tmp_path: Path, strategy: str, restarted: list[int]) -> None:
    chip, runner, out = boot(fake.write_system(tmp_path, strategy=strategy))
    pump_until(runner, lambda: "message tag 1: 42" in out.getvalue())
    chip.control_log.clear()
    chip.written.clear()
    runner.chip.send(B, fake.POISON, [0])
    pump_until(runner, lambda: runner.services["b"].restarts == 1)
    touched = sorted({tile for _, tile in chip.control_log})
    assert touched == restarted and sorted(chip.written) == restarted
    assert [tile for op, tile in chip.control_log if op == "run"] == restarted  # in start order
    text = out.getvalue()
    assert "down: tile 2 service b supervisor group: cause ASSERTION at pc" in text  # the poisoned service fails an assert
    for tile in restarted:
        assert f"restarted: tile {tile} service {NAMES[tile]} supervisor group" in text
    # the survivors and the restarted tiles all answer again, and solo never stopped
    for tile in (SOLO, A, B, C):
        runner.chip.send(tile, fake.ECHO_PLUS_ONE, [tile * 10])
    pump_until(runner, lambda: all(f"(tile {t}): message tag 1: {t * 10 + 1}" in out.getvalue() for t in (A, B, C))
               and "solo (tile 0): message tag 1: 1\n" in out.getvalue())
    assert chip.tiles[SOLO].state is TileState.SLEEPING


def test_intensity_escalates_to_the_parent_and_then_stops_the_system(tmp_path: Path) -> None:
    chip, runner, out = boot(fake.write_system(tmp_path, strategy="one_for_one", group_restarts=1, root_restarts=1))
    client = runner.chip
    client.send(B, fake.POISON, [0])
    pump_until(runner, lambda: runner.services["b"].restarts == 1)  # within group's intensity
    chip.control_log.clear()
    client.send(B, fake.POISON, [0])  # second restart within 60 s: group gives up, root restarts the group
    pump_until(runner, lambda: runner.services["b"].restarts == 2)
    assert sorted({tile for _, tile in chip.control_log}) == [A, B, C]
    assert "gave up: - supervisor group" in out.getvalue()
    chip.control_log.clear()
    client.send(A, fake.POISON, [0])  # group (fresh) restarts a: within its intensity
    pump_until(runner, lambda: runner.services["a"].restarts == 2)
    assert sorted({tile for _, tile in chip.control_log}) == [A]
    client.send(A, fake.POISON, [0])  # group gives up again; root's second restart within 60 s: system stops
    pump_until(runner, lambda: runner.stopped_report is not None)
    assert "supervisor root gave up" in runner.stopped_report
    assert "SYSTEM STOPPED" in out.getvalue()
    assert all(chip.tiles[t].state in (TileState.HALTED, TileState.TRAPPED) for t in (SOLO, A, B, C))
    assert runner.serve(duration=0.1) == 2


def test_chip_with_other_parameters_is_refused_naming_them(tmp_path: Path) -> None:
    image_path = fake.write_system(tmp_path)
    client = Chip(fake.FakeChipLink(fake.FakeChip(tiles=6, mailbox_depth=8)).open(), reply_timeout=0.2)
    runner = Runner(client, read_image(image_path), image_path=image_path, out=io.StringIO())
    with pytest.raises(ChipMismatch, match=r"\(tiles: image 4, chip 6; mailbox depth: image 4, chip 8\): rebuild"):
        runner.boot()


def test_ctrl_c_stops_every_tile_and_events_are_logged_next_to_the_image(tmp_path: Path) -> None:
    image_path = fake.write_system(tmp_path)
    chip, runner, out = boot(image_path)

    def interrupt() -> None:
        raise KeyboardInterrupt

    assert runner.serve(idle=interrupt) == 0
    runner.shutdown()
    assert [op for op, _ in chip.control_log[-4:]] == ["halt"] * 4
    assert [tile for _, tile in chip.control_log[-4:]] == [C, B, A, SOLO]
    assert all(tile.state is TileState.HALTED for tile in chip.tiles)
    log = event_log_path(image_path).read_text()
    assert "started: tile 0 service solo" in log and "all tiles stopped" in log
