"""`TesseraChip(counters=False)`: no per-tile counters in hardware, IDENTIFY says so, STATUS words 4..6 read 0, and
the host OS shows the counters as unavailable ("-"), not as 0 (`tessera ps`/`top`), and `tessera trace` refuses."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.sim import Simulator

from tessera.firmware.asm import assemble
from tessera.firmware.isa import Cause, TileState
from tessera.hw.chip import TesseraChip, cycle_counter_stream
from tessera.hw.core_bit import counter_stream
from tessera.hw.network import phase_at_reset
from tessera.hw.tile_node import TileNode
from tessera.os.chip import Chip
from tessera.os.cli import main
from tessera.os.image import read_image
from tessera.os.protocol import (
    ChipInfo,
    Feature,
    Identify,
    ReadMem,
    ReadStatus,
    Run,
    SlipDecoder,
    StatusWord,
    TileStatus,
    WriteMem,
    parse_reply,
)
from tessera.os.runner import Runner
from tessera.sim.bridge_model import BridgeModel

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake
import host_os_reload_system as system

COUNTER_WORDS = (StatusWord.RETIRED, StatusWord.MESSAGES_IN, StatusWord.MESSAGES_OUT)
#: Ten instructions retired, then the service exits.
PROGRAM = "\n".join(["addi a0, a0, 1"] * 9 + ["ecall", ""])


def test_tile_node_without_counters_has_no_counter_ports() -> None:
    node = TileNode(tile_id=0, num_tiles=1, mem_bytes=1024, phase_at_reset=phase_at_reset(0), counters=False)
    assert not {"retired", "messages_in", "messages_out"} & set(node.signature.members)
    with_counters = TileNode(tile_id=0, num_tiles=1, mem_bytes=1024, phase_at_reset=phase_at_reset(0))
    assert {"retired", "messages_in", "messages_out"} <= set(with_counters.signature.members)


def test_cycle_counter_stream_equals_counter_stream() -> None:
    """The chip's serial stream and core_bit's snapshot stream of a counter from reset agree in every cycle from the
    first announced frame on (300 frames: carries of the serial +64 through bit 14), and again after a reset in the
    middle of a frame (the stream's block RAM keeps its content across it)."""
    m = Module()
    cycle = Signal(64)
    m.d.sync += cycle.eq(cycle + 1)
    reference = counter_stream(m, cycle)
    serial = cycle_counter_stream(m, cycle)
    restart = Signal()
    top = Module()
    top.submodules.streams = ResetInserter(restart)(m)
    announced = {"frames": 0}

    async def bench(ctx) -> None:
        for run_frames in (300, 40):
            primed = False
            for number in range(run_frames * 64):
                expected = tuple(ctx.get(signal) for signal in reference)
                got = tuple(ctx.get(signal) for signal in serial)
                primed |= bool(expected[1])
                if primed:
                    assert got == expected, f"cycle {number}: serial {got}, counter_stream {expected}"
                else:
                    assert got[1:] == expected[1:] == (0, expected[2]), number
                announced["frames"] += expected[1]
                await ctx.tick()
            for _ in range(13):  # then a reset, not at a frame boundary
                await ctx.tick()
            ctx.set(restart, 1)
            await ctx.tick()
            ctx.set(restart, 0)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert announced["frames"] > 500


def run_frames(chip: TesseraChip, commands: list, limit: int = 20_000) -> list:
    """Send `commands` one after the other over the chip's byte streams; the parsed replies."""
    replies = []

    async def bench(ctx) -> None:
        decoder = SlipDecoder()
        ctx.set(chip.tx.ready, 1)
        for seq, command in enumerate(commands):
            for byte in command.frame(seq + 1):
                ctx.set(chip.rx.payload, byte)
                ctx.set(chip.rx.valid, 1)
                await ctx.tick().until(chip.rx.ready)
            ctx.set(chip.rx.valid, 0)
            for _ in range(limit):
                await ctx.tick()
                if ctx.get(chip.tx.valid):
                    frames = list(decoder.feed([ctx.get(chip.tx.payload)]))
                    if frames:
                        replies.append(parse_reply(frames[0].body))
                        break
            else:
                raise AssertionError(f"no reply to {command} within {limit} cycles")

    sim = Simulator(chip)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return replies


@pytest.mark.parametrize("counters", [False, True])
def test_chip_counters_flag_sets_features_and_status_words(counters: bool) -> None:
    """A tile retires ten instructions; STATUS reads them (and IDENTIFY names INSTRET) only on a counting chip."""
    chip = TesseraChip(tiles=1, mem_bytes=1024, link="bytes", counters=counters)
    words = assemble(PROGRAM).words()
    identify, _, _, status = run_frames(
        chip, [Identify(0), WriteMem(0, 0, tuple(words)), Run(0), ReadStatus(0)]
    )
    info = ChipInfo.from_bytes(identify.payload)
    assert info == chip.info
    assert bool(info.features & Feature.INSTRET) is counters
    assert bool(info.features & Feature.MESSAGE_COUNTERS) is counters
    tile = TileStatus.from_words(status.words())
    assert (tile.state, tile.cause) == (TileState.TRAPPED, Cause.ECALL)
    expected = (len(words), 0, 0) if counters else (0, 0, 0)
    assert tuple(status.words()[word] for word in COUNTER_WORDS) == expected


#: Reads the counter (high, low, high again) into memory bytes 256..267, then exits.
COUNTER_PROGRAM = """
    rdcycleh a1
    rdcycle a0
    rdcycleh a2
    sw a0, 256(zero)
    sw a1, 260(zero)
    sw a2, 264(zero)
    ecall
"""


def test_bit_core_tiles_read_the_chips_counter_stream() -> None:
    """Bit-core tiles read cycle/cycleh from the chip's one counter stream (the block RAM ring): a frame's value
    (64k - 1, so 63 modulo 64), earlier than the chip counter that STATUS reads afterwards, and after the cycles
    the host spent loading and starting the program; both tiles of the chip get it."""
    chip = TesseraChip(tiles=2, mem_bytes=1024, link="bytes", counters=False, core="bit")
    words = tuple(assemble(COUNTER_PROGRAM).words())
    waits = [ReadStatus(0)] * 30  # a bit-core instruction takes ~60 cycles, a counter read up to 64 more
    replies = run_frames(
        chip,
        [WriteMem(0, 0, words), WriteMem(1, 0, words), ReadStatus(0), Run(0), Run(1), *waits,
         ReadStatus(0), ReadStatus(1), ReadMem(0, 256, 3), ReadMem(1, 256, 3)],
    )
    loaded = TileStatus.from_words(replies[2].words()).cycle
    for tile in (0, 1):
        status = TileStatus.from_words(replies[-4 + tile].words())
        assert (status.state, status.cause) == (TileState.TRAPPED, Cause.ECALL)
        low, high, high_again = replies[-2 + tile].words()
        read = high << 32 | low
        assert high == high_again == 0
        assert read % 64 == 63 and loaded < read < status.cycle, (loaded, read, status.cycle)


class UncountedTiles(fake.FakeTiles):
    """The fake chip's tiles as a `counters=False` chip answers STATUS: words 4..6 read 0."""

    def read_status_word(self, tile: int, index: int) -> int:
        return 0 if index in COUNTER_WORDS else super().read_status_word(tile, index)


def uncounted_fake_chip() -> fake.FakeChip:
    chip = fake.FakeChip()
    chip.info = replace(chip.info, features=chip.info.features & ~(Feature.INSTRET | Feature.MESSAGE_COUNTERS))
    chip.bridge = BridgeModel(chip.info, UncountedTiles(chip), fake.FakeHostPort(chip))
    return chip


def test_top_and_trace_without_message_counters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    path = system.write(tmp_path, version=1, count=1_000_000, period=300)
    chip = uncounted_fake_chip()
    runner = Runner(Chip(fake.FakeChipLink(chip).open()), read_image(path), out=io.StringIO(), progress=io.StringIO())
    runner.boot()
    assert {(row["in"], row["out"]) for row in runner.ps()} == {("-", "-")}
    board = fake.FakeBoardServer(chip)
    try:
        assert main(["top", "--iterations", "2", "--interval", "0.2", "--target", board.target,
                     "--image", str(path)]) == 0
        frames = capsys.readouterr().out.split("\n\n")
        assert len(frames) == 2
        for text in frames:
            rows = [line.split() for line in text.strip("\n").splitlines()[2:]]
            assert rows and all(row[-4:] == ["-", "-", "-", "-"] for row in rows), text
        assert main(["trace", "--seconds", "0.2", "-o", str(tmp_path / "t.svg"), "--target", board.target,
                     "--image", str(path)]) == 1
        assert "no message counters" in capsys.readouterr().err
    finally:
        board.close()
    assert not (tmp_path / "t.svg").exists()
