"""Virtual board benchmark (`make bench-sim`): prints `name: value` lines.

- sim_cycles_per_s_8, sim_cycles_per_s_16: the chip (hw/chip.py, 8 and 16 tiles) on the virtual board under
  Verilator, booted over its link with the ping-pong demo (os/demos/pingpong) and kept busy by one long `ping`
  request (ping and pong exchange a message every round, the host link stays idle). The figure is the board's own
  cycle counter over a fixed wall-clock window (two `stats` readings), so boot and load time are not counted.
- sim_cycles_per_cpu_s_8: the same cycles over the CPU time the 8-tile board process used in that window: what
  the board would reach on a core of its own, so that a figure taken on a loaded machine can still be judged.
- sim_cycles_per_s_8_icarus: the same on the Icarus fallback.
- sim_build_s: a first build of the 8-tile chip (Verilog generation + Verilator compile) into an empty cache root
  (build/bench_sim_fresh, emptied first), so earlier builds in build/vboard cannot be reused. It includes
  compiling Verilator's runtime objects, which later builds with the same options link from the cache instead
  (docs/virtual-board.md).
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
from tessera.os.demo_host import DEMOS_ROOT, DemoSystem
from tessera.os.image import write_image
from tessera.os.build import build_image
from tessera.os.link import TcpLink
from tessera.os.manifest import parse_manifest
from tessera.sim import virtual_board
from tessera.sim.virtual_board import BoardBuild, ChipSpec, Simulator, VirtualBoard, build_board

FRESH_ROOT = virtual_board.PROJECT_ROOT / "build" / "bench_sim_fresh"
#: Seconds the host client waits for a command's reply: Icarus boards answer in tens of milliseconds, not in
#: the client's default half second.
REPLY_TIMEOUT_S = {"verilator": 2.0, "icarus": 30.0}
#: Far more rounds than any window lasts: ping is still bouncing when the board is stopped.
PING_ROUNDS = 100_000_000


def pingpong_image(tiles: int, folder: Path) -> Path:
    """The ping-pong demo's image for a chip of `tiles` tiles (the demo's manifest with its chip size changed)."""
    manifest_path = DEMOS_ROOT / "pingpong" / "app.toml"
    text = manifest_path.read_text()
    if "tiles = 8" not in text:
        raise RuntimeError(f"{manifest_path}: expected 'tiles = 8' in [chip] to resize the demo")
    manifest = parse_manifest(text.replace("tiles = 8", f"tiles = {tiles}", 1), manifest_path)
    path = folder / f"pingpong_{tiles}.tsi"
    write_image(build_image(manifest), path)
    return path


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
        first = build_board(spec)
        second = build_board(spec)
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
    print(f"sim_cycles_per_s_16: {busy_cycles_per_s(build_board(ChipSpec(params={'tiles': 16})), 16, args.window)[0]:.0f}")
    print(f"sim_build_s: {first.seconds:.1f}")
    print(f"sim_rebuild_s: {cached.seconds:.2f}")
    if not args.skip_icarus:
        simulator: Simulator = "icarus"
        icarus = build_board(ChipSpec(params={"tiles": 8}), simulator=simulator)
        print(f"sim_cycles_per_s_8_icarus: {busy_cycles_per_s(icarus, 8, args.window)[0]:.0f}")
    print(f"load_average_1m_end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
