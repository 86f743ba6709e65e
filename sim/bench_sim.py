"""Virtual board benchmark (`make bench-sim`): prints `name: value` lines.

- sim_cycles_per_s_8, sim_cycles_per_s_16: the chip (hw/chip.py, 8 and 16 tiles) on the virtual board under
  Verilator (profile-guided builds, as `tessera sim --pgo` makes them), booted over its link with the ping-pong
  demo (os/demos/pingpong) and kept busy by one long `ping` request (ping and pong exchange a message every
  round, the host link stays idle). The figure is the board's own
  cycle counter over a fixed wall-clock window (two `stats` readings), so boot and load time are not counted.
- sim_cycles_per_cpu_s_8: the same cycles over the CPU time the 8-tile board process used in that window: what
  the board would reach on a core of its own, so that a figure taken on a loaded machine can still be judged.
- sim_cycles_per_s_8_icarus: the same on the Icarus fallback.
- sim_build_s: a first build of the 8-tile chip into an empty cache root (build/bench_sim_fresh, emptied first), so
  earlier builds in build/vboard cannot be reused: Verilog generation, the instrumented compile, the training run
  and the profile-guided compile. It includes compiling Verilator's runtime objects, which later builds with the
  same options link from the cache instead (docs/virtual-board.md). sim_build_profile: "trained" (or why not).
- sim_rebuild_s: a second build_board call for the same chip and cache root: the cached start.
- load_average_1m_start, load_average_1m_end: the machine's 1-minute load average before and after (the speeds
  are wall-clock figures: other processes on the machine lower them).
Usage: python -m tessera.sim.bench_sim [--window SECONDS] [--skip-icarus]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

from tessera.os.chip import Chip
from tessera.os.demo_host import DemoSystem
from tessera.os.link import TcpLink
from tessera.sim import virtual_board
from tessera.sim.virtual_board import (
    PING_ROUNDS,
    BoardBuild,
    ChipSpec,
    Simulator,
    VirtualBoard,
    build_board,
    pingpong_image,
)

FRESH_ROOT = virtual_board.PROJECT_ROOT / "build" / "bench_sim_fresh"
#: Seconds the host client waits for a command's reply: Icarus boards answer in tens of milliseconds, not in
#: the client's default half second.
REPLY_TIMEOUT_S = {"verilator": 2.0, "icarus": 30.0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_cycles_per_s(build: BoardBuild, tiles: int, window_s: float) -> tuple[float, float]:
    """Boot ping-pong on a fresh board of `build`, start a long ping, and return cycles per second over `window_s`
    of wall-clock time and of the board process's CPU time (the latter is the Verilator model's own; for Icarus it
    is the Python server's around vvp, and meaningless)."""
    with tempfile.TemporaryDirectory() as folder, VirtualBoard.start(build, pty=False) as board:
        image = pingpong_image(tiles, Path(folder))
        with TcpLink(board.endpoints.host, board.endpoints.port) as link:
            chip = Chip(link, reply_timeout=REPLY_TIMEOUT_S[build.simulator])
            system = DemoSystem(chip, image, events=io.StringIO())
            system.send("ping", [PING_ROUNDS])
            time.sleep(0.2)  # ping is past its request and in its loop
            cpu_before, before = cpu_seconds(board.process.pid), board.stats()
            time.sleep(window_s)
            after, cpu_after = board.stats(), cpu_seconds(board.process.pid)
    cycles = after["cycles"] - before["cycles"]
    return cycles / (after["seconds"] - before["seconds"]), cycles / max(cpu_after - cpu_before, 1e-9)


def fresh_and_cached_build(spec: ChipSpec) -> tuple[BoardBuild, BoardBuild]:
    """Build `spec` into an emptied cache root, then ask again (the cached start); both builds stay usable."""
    shutil.rmtree(FRESH_ROOT, ignore_errors=True)
    with mock.patch.object(virtual_board, "BUILD_ROOT", FRESH_ROOT):
        first = build_board(spec, pgo=True)
        second = build_board(spec, pgo=True)
    if not first.rebuilt or second.rebuilt:
        raise RuntimeError(f"cache misbehaved: first rebuilt={first.rebuilt}, second rebuilt={second.rebuilt}")
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=5.0, help="wall-clock seconds of each speed measurement")
    parser.add_argument("--skip-icarus", action="store_true")
    args = parser.parse_args()
    print(f"load_average_1m_start: {os.getloadavg()[0]:.1f}")
    first, cached = fresh_and_cached_build(ChipSpec(params={"tiles": 8}))
    wall_8, cpu_8 = busy_cycles_per_s(first, 8, args.window)
    print(f"sim_cycles_per_s_8: {wall_8:.0f}")
    print(f"sim_cycles_per_cpu_s_8: {cpu_8:.0f}")
    sixteen = build_board(ChipSpec(params={"tiles": 16}), pgo=True)
    print(f"sim_cycles_per_s_16: {busy_cycles_per_s(sixteen, 16, args.window)[0]:.0f}")
    print(f"sim_build_s: {first.seconds:.1f}")
    print(f"sim_build_profile: {first.profile}")
    print(f"sim_rebuild_s: {cached.seconds:.2f}")
    if not args.skip_icarus:
        simulator: Simulator = "icarus"
        icarus = build_board(ChipSpec(params={"tiles": 8}), simulator=simulator)
        print(f"sim_cycles_per_s_8_icarus: {busy_cycles_per_s(icarus, 8, args.window)[0]:.0f}")
    print(f"load_average_1m_end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
