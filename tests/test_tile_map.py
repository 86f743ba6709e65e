"""The README's tile map (docs/img/tile-map.svg) is what `python -m tessera.hw.tile_map` draws for README_CHIP, and
the drawing follows the chip top's placement for any configuration."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from tessera.hw import tile_map
from tessera.hw.chip import TesseraChip
from tessera.hw.io_node import io_address
from tessera.hw.noc_layouts import HOST_NODE, ring_length

SVG = "{http://www.w3.org/2000/svg}"


def titles(document: str) -> list[str]:
    root = ElementTree.fromstring(document)
    return [text.text or "" for text in root.iter(f"{SVG}text") if text.get("font-weight") == "bold"]


def test_committed_picture_is_up_to_date() -> None:
    expected = tile_map.svg(**tile_map.README_CHIP)
    assert tile_map.README_SVG.read_text() == expected, "run `python -m tessera.hw.tile_map` and commit the SVG"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("params", [tile_map.README_CHIP, {"tiles": 3, "mem_bytes": 1024, "mailbox_depth": 4},
                                    {"tiles": 1, "mem_bytes": 2048, "mailbox_depth": 2, "leds": 8, "buttons": 0}])
def test_drawing_follows_the_chip_placement(params: dict[str, int]) -> None:
    chip = TesseraChip(**params, link="bytes")
    names = titles(tile_map.svg(**params))
    tiles = [name for name in names if name.startswith("tile ")]
    assert tiles == [f"tile {index}" for index in range(chip.info.tile_count)]
    io = [name for name in names if name.startswith("I/O node")]
    assert io == ([] if chip.io is None else [f"I/O node {io_address(chip.info.tile_count)}"])
    assert f"host node {HOST_NODE}" in names and "host bridge" in names
    stops = chip.info.mesh_width  # ring stops: tiles, the I/O node, the host
    heading = names[0]
    assert re.search(rf"slotted ring of {ring_length(stops)} registers", heading), heading


def test_command_line_writes_the_file(tmp_path) -> None:
    out = tmp_path / "map.svg"
    subprocess.run([sys.executable, "-m", "tessera.hw.tile_map", "--tiles", "2", "--leds", "0", "--buttons", "0",
                    "-o", str(out)], check=True, capture_output=True)
    assert titles(out.read_text())[1:4] == ["tile 0", "tile 1", f"host node {HOST_NODE}"]
