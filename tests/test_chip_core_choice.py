"""The chip's `core` parameter picks the tile core; every core builds into a chip and an unknown name is refused."""

from __future__ import annotations

import pytest
from amaranth.back import rtlil

from tessera.hw.chip import TesseraChip
from tessera.hw.core import TileCore
from tessera.hw.core_bit import BitSerialTileCore
from tessera.hw.core_serial import SerialTileCore
from tessera.hw.tile import Tile


@pytest.mark.parametrize(
    ("name", "cls"), [("parallel", TileCore), ("serial", SerialTileCore), ("bit", BitSerialTileCore)]
)
def test_chip_builds_with_every_core(name: str, cls: type) -> None:
    chip = TesseraChip(tiles=2, mem_bytes=1024, link="bytes", core=name)
    assert all(isinstance(node.tile.core, cls) for node in chip.nodes)
    assert f"{name} core" in chip.summary()
    assert "module" in rtlil.convert(chip)


def test_unknown_core_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"core='fast': expected one of parallel, serial, bit"):
        TesseraChip(tiles=2, core="fast")
    with pytest.raises(ValueError, match=r"core='fast'"):
        Tile(mem_bytes=1024, core="fast")
