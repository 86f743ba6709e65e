"""The iCEBreaker's chip (`tessera sim --board icebreaker`: the chip `make build BOARD=icebreaker` builds, with the
byte-stream link) under Verilator: four bit-core tiles whose memories are 32 KiB slices of the SPRAM banks, two
tiles to a bank, mailboxes 4 deep, the I/O node. The host reaches each tile's whole memory and no other's; the demo
tour runs there, with the demos built for this chip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.hw.chip import TesseraChip
from tessera.os import demo, demo_runs
from tessera.os.chip import Chip
from tessera.os.link import TcpLink
from tessera.os.protocol import Feature
from tessera.sim import virtual_board
from tessera.sim.virtual_board import BOARD_CHIP, ChipSpec, VirtualBoard

TILES = 4
MEM_BYTES = 32768

pytestmark = pytest.mark.slow


def test_icebreaker_chip_serves_private_memories_and_the_demo_tour(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = ChipSpec(BOARD_CHIP, {"board": "icebreaker"})
    with VirtualBoard.start(virtual_board.build_board(spec), pty=False) as running:
        endpoints = running.endpoints
        with TcpLink(endpoints.host, endpoints.port) as link:
            chip = Chip(link)
            info = chip.identify()
            assert (info.tile_count, info.mem_bytes, info.mailbox_depth) == (TILES, MEM_BYTES, 4)
            assert info.features & Feature.IO_NODE and not info.features & Feature.INSTRET
            # Each tile's first and last words: the last of one slice sits beside the first of the next.
            edges = (0, MEM_BYTES - 8)
            for tile in range(TILES):
                for address in edges:
                    chip.write_memory(tile, address, bytes([tile, address >> 8 & 0xFF, 0x5A, 0xC3] * 2))
            for tile in range(TILES):
                for address in edges:
                    expected = int.from_bytes(bytes([tile, address >> 8 & 0xFF, 0x5A, 0xC3]), "little")
                    assert chip.read_memory(tile, address, 2) == [expected, expected], (tile, address)
            capsys.readouterr()
            # The tour but the Mandelbrot demo, which runs on a smaller picture below: the tour's one-tile picture on
            # the bit core (~55 cycles per instruction) is 55 M cycles, ~3 minutes under Verilator
            # (`make demo BOARD=icebreaker` runs it).
            demo.tour(link, tmp_path, [name for name in demo.NAMES if name != "mandelbrot"])
            picture = demo_runs.run_mandelbrot(Chip(link), tmp_path, lambda _: None, width=8, height=6, limit=6)
    assert picture.workers == TILES - 1  # the collector and the 3 workers pinned to tiles 1..3
    assert picture.counts == demo_runs.mandelbrot_reference(8, 6, 6)
    assert picture.speedup > 1.5, picture.speedup
    out = capsys.readouterr().out
    assert f"chip at {link.target}: {TILES} tiles of {MEM_BYTES} bytes, mailbox depth 4" in out
    assert "skipped" not in out
    for line in ("ping-pong", "crash and recover", "persistent key-value store"):
        assert line in out
    assert "restarted: tile" in out and "state restored" in out


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_spram_chip_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match=r"4 tiles in SPRAM get at most 32768 bytes each"):
        TesseraChip(tiles=4, mem_bytes=65536, core="bit", tile_memory="spram")
    with pytest.raises(ValueError, match=r"tile_memory='spram' needs core='bit'"):
        TesseraChip(tiles=2, mem_bytes=1024, core="parallel", tile_memory="spram")
    with pytest.raises(ValueError, match=r"9 tiles: the UP5K's SPRAM holds the memory of 1..8 tiles"):
        TesseraChip(tiles=9, mem_bytes=1024, core="bit", tile_memory="spram")
    with pytest.raises(ValueError, match=r"tile_memory='flash': expected one of block_ram, spram"):
        TesseraChip(tiles=1, tile_memory="flash")
