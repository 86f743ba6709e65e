"""The chip with its tiles' memories in SPRAM banks (`tile_memory="spram"`, as on the UP5K boards) under Verilator:
four bit-core tiles of 32 KiB, two to a bank. The host reaches each tile's whole memory and no other's; the crash
demo (three services on three tiles, two of them sharing a bank, a fault and a supervised restart) gives the
answers of a fault-free run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.hw.chip import TesseraChip
from tessera.os import demo_runs
from tessera.os.chip import Chip
from tessera.os.link import TcpLink
from tessera.sim import virtual_board
from tessera.sim.virtual_board import ChipSpec, VirtualBoard

TILES = 4
MEM_BYTES = 32768
SPEC = ChipSpec("tessera.hw.chip:TesseraChip",
                {"tiles": TILES, "mem_bytes": MEM_BYTES, "core": "bit", "tile_memory": "spram", "mailbox_depth": 4})

pytestmark = pytest.mark.slow


def test_spram_chip_serves_whole_private_memories_and_the_crash_demo(tmp_path: Path) -> None:
    with VirtualBoard.start(virtual_board.build_board(SPEC), pty=False) as running:
        endpoints = running.endpoints
        with TcpLink(endpoints.host, endpoints.port) as link:
            chip = Chip(link)
            assert (chip.info.tile_count, chip.info.mem_bytes) == (TILES, MEM_BYTES)
            # Each tile's first and last words: the last of one slice sits beside the first of the next.
            edges = (0, MEM_BYTES - 8)
            for tile in range(TILES):
                for address in edges:
                    chip.write_memory(tile, address, bytes([tile, address >> 8 & 0xFF, 0x5A, 0xC3] * 2))
            for tile in range(TILES):
                for address in edges:
                    expected = int.from_bytes(bytes([tile, address >> 8 & 0xFF, 0x5A, 0xC3]), "little")
                    assert chip.read_memory(tile, address, 2) == [expected, expected], (tile, address)

            lines: list[str] = []
            crashed = demo_runs.run_crash(chip, tmp_path / "crash", lines.append, jobs=(50, 0, 8, 0, 4000), gap=300)
    assert crashed.restarts == 2
    assert crashed.answers[1] is None and crashed.answers[3] is None
    assert [answer[0] for answer in crashed.answers if answer] == [1_000_000 // 50, 1_000_000 // 8, 1_000_000 // 4000]
    assert crashed.steady == (crashed.pacer_sent, crashed.pacer_sent, 0)


def test_spram_chip_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match=r"4 tiles in SPRAM get at most 32768 bytes each"):
        TesseraChip(tiles=4, mem_bytes=65536, core="bit", tile_memory="spram")
    with pytest.raises(ValueError, match=r"tile_memory='spram' needs core='bit'"):
        TesseraChip(tiles=2, mem_bytes=1024, core="parallel", tile_memory="spram")
    with pytest.raises(ValueError, match=r"9 tiles: the UP5K's SPRAM holds the memory of 1..8 tiles"):
        TesseraChip(tiles=9, mem_bytes=1024, core="bit", tile_memory="spram")
    with pytest.raises(ValueError, match=r"tile_memory='flash': expected one of block_ram, spram"):
        TesseraChip(tiles=1, tile_memory="flash")
