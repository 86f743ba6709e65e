"""The Verilator side of the virtual board build: the board top around the chip, and Verilator's runtime objects
shared between builds.

Contract:
- `board_top_verilog(chip_text, chip_top)` is a Verilog module `vboard_top` with exactly the chip top's ports,
  which the C++ harness (sim/vboard_main.cpp) drives instead of the chip top. It registers everything the harness
  drives, so that no chip logic depends combinationally on a top-level input: Verilator re-evaluates logic that
  depends on top-level inputs at every `eval()` (twice per clock), and Amaranth's next-state logic of every
  register depends on `rst`. From the outside:
  * `rst` reaches the chip one cycle late; while the chip is in reset, `rx__ready` and `tx__valid` are low (the
    harness neither loses a byte into a chip in reset nor takes one from it);
  * each byte stream passes a one-byte register stage: one cycle more latency each way; rx keeps one byte per
    cycle, tx one byte every two cycles (still far above any real UART);
  * every other port (the board I/O `leds`/`buttons` of a chip with an I/O node) is passed straight through.
- `RuntimeCache(root, verilator_version, options)` keeps the objects Verilator compiles from its own runtime
  sources (verilated.o, verilated_threads.o, and verilated_fst_c.o for traced builds) in `root/<hash>/`, the
  hash taken over everything they are compiled from (Verilator version, the C++ compiler's version, the
  Verilator options): `build_args()` are the extra Verilator arguments that link a new build against the cached
  objects instead of compiling them again (none while the cache is empty), `keep(obj_dir)` stores them after a
  successful build. (Copying them into the new object folder does not work: verilated.mk makes them depend on
  the freshly generated makefile, so make would compile them again.)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

BOARD_TOP = "vboard_top"
#: Objects Verilator's makefile compiles from its runtime sources (include/*.cpp), the same for every design.
RUNTIME_OBJECTS = ("verilated.o", "verilated_threads.o", "verilated_fst_c.o")

_BOARD_TOP_BODY = """\
  // The chip's reset and byte streams, registered (see tessera.sim.vboard_verilator).
  reg chip_rst = 1'b1;
  reg rx_full = 1'b0, tx_full = 1'b0;
  reg [7:0] rx_byte = 8'h00, tx_byte = 8'h00;
  wire chip_rx_ready, chip_tx_valid;
  wire [7:0] chip_tx_payload;
  assign rx__ready = !chip_rst && (!rx_full || chip_rx_ready);
  assign tx__valid = tx_full;
  assign tx__payload = tx_byte;
  always @(posedge clk) begin
    chip_rst <= rst;
    if (chip_rst) rx_full <= 1'b0;
    else if (rx__valid && rx__ready) begin rx_full <= 1'b1; rx_byte <= rx__payload; end
    else if (chip_rx_ready) rx_full <= 1'b0;
    if (chip_rst) tx_full <= 1'b0;
    else if (tx_full) begin if (tx__ready) tx_full <= 1'b0; end
    else if (chip_tx_valid) begin tx_full <= 1'b1; tx_byte <= chip_tx_payload; end
  end
"""

_STREAM_CONNECTIONS = {
    "clk": "clk",
    "rst": "chip_rst",
    "rx__payload": "rx_byte",
    "rx__valid": "rx_full",
    "rx__ready": "chip_rx_ready",
    "tx__payload": "chip_tx_payload",
    "tx__valid": "chip_tx_valid",
    "tx__ready": "!tx_full",
}


def chip_ports(chip_text: str, chip_top: str) -> list[tuple[str, str, str]]:
    """(direction, range or '', name) of every port of module `chip_top` in `chip_text`."""
    parts = chip_text.split(f"module {chip_top}(", 1)
    if len(parts) != 2:
        raise ValueError(f"the Verilog has no module {chip_top}")
    body = parts[1].split("endmodule", 1)[0]
    return re.findall(r"^\s*(input|output)\s+(?:signed\s+)?(\[[^\]]*\])?\s*(\w+)\s*;", body, flags=re.MULTILINE)


def board_top_verilog(chip_text: str, chip_top: str) -> str:
    """The module `vboard_top` around `chip_top` (see the module docstring)."""
    ports = chip_ports(chip_text, chip_top)
    names = [name for _, _, name in ports]
    declarations = "".join(f"  {direction}{f' {width}' if width else ''} {name};\n" for direction, width, name in ports)
    connections = [f".{name}({_STREAM_CONNECTIONS.get(name, name)})" for name in names]
    return (
        f"module {BOARD_TOP}({', '.join(names)});\n{declarations}{_BOARD_TOP_BODY}"
        f"  {chip_top} chip({', '.join(connections)});\nendmodule\n"
    )


class RuntimeCache:
    """Verilator's runtime objects for one set of compile options, shared by all builds (see module docstring)."""

    def __init__(self, root: Path, verilator_version: str, options: Sequence[str]) -> None:
        compiler = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.partition("\n")[0]
        digest = hashlib.sha256("\0".join([verilator_version, compiler, *options]).encode()).hexdigest()[:16]
        self.folder = root / digest

    def build_args(self) -> list[str]:
        """Verilator arguments for a build with the same options: make compiles no runtime object
        (VK_GLOBAL_OBJS empty) and the linker takes the cached ones instead."""
        objects = sorted(self.folder.glob("*.o")) if self.folder.is_dir() else []
        if not objects:
            return []
        return ["-MAKEFLAGS", "VK_GLOBAL_OBJS=", "-LDFLAGS", " ".join(str(path) for path in objects)]

    def keep(self, obj_dir: Path) -> None:
        """Store the runtime objects of a finished build, unless an earlier build already stored them."""
        if self.folder.is_dir():
            return
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=".staging-"))
        for name in RUNTIME_OBJECTS:
            if (obj_dir / name).exists():
                shutil.copy2(obj_dir / name, staging / name)
        try:
            os.rename(staging, self.folder)  # atomic: a concurrent builder sees all objects or none
        except OSError:  # another builder stored them first
            shutil.rmtree(staging, ignore_errors=True)
